use super::*;
use proptest::prelude::*;

fn parse(bytes: &[u8]) -> Result<Answer, HttpError> {
    let mut r = bytes;
    read_answer(&mut r)
}

#[test]
fn answers_by_length_chunks_and_close() {
    let a = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}").unwrap();
    assert_eq!(
        (a.status, a.body.as_slice(), a.keep),
        (200, &b"{}"[..], true)
    );
    let a = parse(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n1\r\n{\r\n1;x=y\r\n}\r\n0\r\nT: v\r\n\r\n",
    )
    .unwrap();
    assert_eq!((a.body.as_slice(), a.keep), (&b"{}"[..], false));
    let a = parse(b"HTTP/1.1 500 Oops\r\n\r\nbody").unwrap();
    assert_eq!(
        (a.status, a.body.as_slice(), a.keep),
        (500, &b"body"[..], false)
    );
    let a = parse(b"HTTP/1.0 204 No Content\r\n\r\n").unwrap();
    assert_eq!((a.status, a.body.len(), a.keep), (204, 0, false));
}

#[test]
fn an_idle_close_is_told_apart_from_a_truncated_answer() {
    assert!(matches!(parse(b""), Err(HttpError::Closed(None))));
    assert!(matches!(parse(b"HTTP/1.1 2"), Err(HttpError::Truncated)));
    assert!(matches!(
        parse(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n{}"),
        Err(HttpError::Truncated)
    ));
    struct Reset;
    impl Read for Reset {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(io::ErrorKind::ConnectionReset.into())
        }
    }
    let mut r = io::BufReader::new(Reset);
    assert!(matches!(
        read_answer(&mut r),
        Err(HttpError::Closed(Some(_)))
    ));
}

#[test]
fn a_missing_status_line_is_refused() {
    assert!(matches!(
        parse(b"\r\nContent-Length: 0\r\n\r\n"),
        Err(HttpError::NoStatusLine)
    ));
    assert!(matches!(parse(b"SSH-2.0\r\n"), Err(HttpError::NotHttp)));
}

#[test]
fn a_bad_status_code_is_refused() {
    for line in [
        &b"HTTP/1.1 OK\r\n\r\n"[..],
        b"HTTP/1.1\r\n\r\n",
        b"HTTP/1.1 2000 OK\r\n\r\n",
        b"HTTP/1.1 +20 OK\r\n\r\n",
        b"HTTP/1.1 099 OK\r\n\r\n",
        b"HTTP/1.1 600 OK\r\n\r\n",
    ] {
        assert!(matches!(parse(line), Err(HttpError::BadStatus)), "{line:?}");
    }
}

#[test]
fn a_header_line_too_long_is_refused() {
    let mut a = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
    a.extend(std::iter::repeat_n(b'a', MAX_LINE));
    a.extend_from_slice(b"\r\n\r\n");
    assert!(matches!(
        parse(&a),
        Err(HttpError::LineTooLong { limit: MAX_LINE })
    ));
    // Many short headers: the framing limit.
    let mut a = b"HTTP/1.1 200 OK\r\n".to_vec();
    for _ in 0..MAX_FRAMING / 8 {
        a.extend_from_slice(b"X: 1234\r\n");
    }
    assert!(matches!(
        parse(&a),
        Err(HttpError::FramingTooLong { limit: MAX_FRAMING })
    ));
}

#[test]
fn a_body_too_long_is_refused() {
    let a = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
        MAX_BODY + 1
    );
    assert!(matches!(
        parse(a.as_bytes()),
        Err(HttpError::BodyTooLong { limit: MAX_BODY })
    ));
    let mut a = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
    a.resize(a.len() + MAX_BODY + 1, b'x');
    assert!(matches!(
        parse(&a),
        Err(HttpError::BodyTooLong { limit: MAX_BODY })
    ));
    let a = format!(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n",
        MAX_BODY + 1
    );
    assert!(matches!(
        parse(a.as_bytes()),
        Err(HttpError::BodyTooLong { limit: MAX_BODY })
    ));
}

#[test]
fn overflowing_sizes_are_refused() {
    let a = b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n";
    assert!(matches!(parse(a), Err(HttpError::BadContentLength)));
    let a = b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx";
    assert!(matches!(parse(a), Err(HttpError::BadContentLength)));
    // usize::MAX after one byte: must not overflow `len + size`.
    let a = format!(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n{:x}\r\n",
        usize::MAX
    );
    assert!(matches!(
        parse(a.as_bytes()),
        Err(HttpError::BodyTooLong { limit: MAX_BODY })
    ));
    let a = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1ffffffffffffffffffff\r\n";
    assert!(matches!(parse(a), Err(HttpError::BadChunkSize)));
    let a = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n+1\r\nx\r\n0\r\n\r\n";
    assert!(matches!(parse(a), Err(HttpError::BadChunkSize)));
}

#[test]
fn a_truncated_chunked_body_is_refused() {
    let head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    for tail in [
        &b"5\r\nab"[..],
        b"2\r\nab\r\n",
        b"2\r\nab\r\n0\r\n",
        b"2\r\nab",
    ] {
        let a = [&head[..], tail].concat();
        assert!(matches!(parse(&a), Err(HttpError::Truncated)), "{tail:?}");
    }
    let a = [&head[..], b"2\r\nabc\r\n0\r\n\r\n"].concat();
    assert!(matches!(parse(&a), Err(HttpError::BadChunkEnd)));
}

#[test]
fn debug_and_errors_show_no_body() {
    let a = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nSECRET").unwrap();
    let shown = format!("{a:?}");
    assert_eq!(shown, "Answer { status: 200, body_len: 6, keep: true }");
}

/// A reader counting what it gave.
struct Counting<R> {
    inner: R,
    n: usize,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.n += n;
        Ok(n)
    }
}

/// Headers the parser does not interpret.
fn header() -> impl Strategy<Value = (String, String)> {
    ("[A-Za-z][A-Za-z0-9-]{0,15}", "[!-~]([ -~]{0,30}[!-~])?").prop_filter(
        "framing headers",
        |(n, _)| {
            !["content-length", "transfer-encoding", "connection"]
                .contains(&n.to_ascii_lowercase().as_str())
        },
    )
}

#[derive(Debug, Clone)]
enum Framing {
    Length,
    Chunked(Vec<usize>),
    Close,
}

fn framing() -> impl Strategy<Value = Framing> {
    prop_oneof![
        Just(Framing::Length),
        prop::collection::vec(any::<usize>(), 0..8).prop_map(Framing::Chunked),
        Just(Framing::Close),
    ]
}

fn build(status: u16, headers: &[(String, String)], body: &[u8], framing: &Framing) -> Vec<u8> {
    let mut a = format!("HTTP/1.1 {status} Reason phrase\r\n");
    for (n, v) in headers {
        a.push_str(&format!("{n}: {v}\r\n"));
    }
    let mut a = a.into_bytes();
    match framing {
        Framing::Length => {
            a.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
            a.extend_from_slice(body);
        }
        Framing::Chunked(cuts) => {
            a.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
            let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (body.len() + 1)).collect();
            cuts.extend([0, body.len()]);
            cuts.sort_unstable();
            cuts.dedup();
            for w in cuts.windows(2) {
                let chunk = &body[w[0]..w[1]];
                a.extend_from_slice(format!("{:X};ext=1\r\n", chunk.len()).as_bytes());
                a.extend_from_slice(chunk);
                a.extend_from_slice(b"\r\n");
            }
            a.extend_from_slice(b"0\r\n\r\n");
        }
        Framing::Close => {
            a.extend_from_slice(b"Connection: close\r\n\r\n");
            a.extend_from_slice(body);
        }
    }
    a
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _ = parse(&bytes);
        // And after a valid status line.
        let a = [&b"HTTP/1.1 200 OK\r\n"[..], &bytes].concat();
        let _ = parse(&a);
    }

    /// Followed by an endless stream of one byte, any prefix ends within the limits.
    #[test]
    fn endless_answers_end_within_the_limits(
        prefix in prop::collection::vec(any::<u8>(), 0..512),
        head in prop::bool::ANY,
        fill in prop::sample::select(vec![b'a', b'0', b'1', b'\n', b' ', b':', 0xff]),
    ) {
        let start: &[u8] = if head { b"HTTP/1.1 200 OK\r\n" } else { b"" };
        let endless = io::Cursor::new([start, &prefix].concat()).chain(io::repeat(fill));
        let mut r = io::BufReader::new(Counting { inner: endless, n: 0 });
        match read_answer(&mut r) {
            Ok(a) => prop_assert!(a.body.len() <= MAX_BODY),
            Err(HttpError::Io(e)) => prop_assert!(false, "untyped error {e}"),
            Err(_) => {}
        }
        let read = r.get_ref().n;
        prop_assert!(read <= start.len() + prefix.len() + MAX_FRAMING + MAX_LINE + MAX_BODY + 2 * 8192, "{read}");
    }

    #[test]
    fn valid_answers_parse_back(
        status in (200u16..=599).prop_filter("no body", |s| *s != 204 && *s != 304),
        headers in prop::collection::vec(header(), 0..6),
        body in prop::collection::vec(any::<u8>(), 0..2048),
        framing in framing(),
    ) {
        let a = parse(&build(status, &headers, &body, &framing)).unwrap();
        prop_assert_eq!(a.status, status);
        prop_assert_eq!(a.body.as_slice(), body.as_slice());
        prop_assert_eq!(a.keep, !matches!(framing, Framing::Close));
    }

    #[test]
    fn sizes_beyond_the_limit_are_refused(n in (MAX_BODY as u128 + 1)..=(u128::MAX), hex in prop::bool::ANY) {
        let a = if hex {
            format!("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{n:x}\r\n")
        } else {
            format!("HTTP/1.1 200 OK\r\nContent-Length: {n}\r\n\r\n")
        };
        match parse(a.as_bytes()) {
            Err(HttpError::BodyTooLong { limit: MAX_BODY }) => prop_assert!(n <= usize::MAX as u128),
            Err(HttpError::BadChunkSize) => prop_assert!(hex && n > usize::MAX as u128),
            Err(HttpError::BadContentLength) => prop_assert!(!hex && n > usize::MAX as u128),
            other => prop_assert!(false, "{:?}", other.map(|a| a.status)),
        }
    }
}
