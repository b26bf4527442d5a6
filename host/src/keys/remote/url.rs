//! `https://HOST[:PORT]`: where a key service listens.

/// The URL of a key service: `https://HOST[:PORT]` (port 443 when left out).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteUrl {
    pub host: String,
    pub port: u16,
}

impl RemoteUrl {
    /// Parses `https://HOST[:PORT][/]`; a bracketed IPv6 host is allowed. Nothing else (no
    /// plain http, no path, no user info).
    pub fn parse(url: &str) -> Option<Self> {
        let rest = url.strip_prefix("https://")?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.is_empty() || rest.contains(['/', '@', '?', '#', ' ']) {
            return None;
        }
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (host, after) = v6.split_once(']')?;
            match after {
                "" => (host, None),
                _ => (host, Some(after.strip_prefix(':')?)),
            }
        } else {
            match rest.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (rest, None),
            }
        };
        if host.is_empty() || (host.contains(':') && !rest.starts_with('[')) {
            return None;
        }
        let port = match port {
            None => 443,
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse().ok().filter(|&p| p != 0)?
            }
            Some(_) => return None,
        };
        Some(Self {
            host: host.to_string(),
            port,
        })
    }
}

impl std::fmt::Display for RemoteUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "https://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "https://{}:{}", self.host, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            RemoteUrl::parse("https://keys.example:8443"),
            Some(RemoteUrl {
                host: "keys.example".into(),
                port: 8443
            })
        );
        assert_eq!(RemoteUrl::parse("https://k/").unwrap().port, 443);
        let v6 = RemoteUrl::parse("https://[::1]:9000").unwrap();
        assert_eq!((v6.host.as_str(), v6.port), ("::1", 9000));
        assert_eq!(v6.to_string(), "https://[::1]:9000");
        for bad in [
            "http://k:1",
            "https://",
            "https://k:",
            "https://k:0",
            "https://k:70000",
            "https://k:1/v1",
            "https://u@k:1",
            "https://::1:9000",
            "k:1",
        ] {
            assert_eq!(RemoteUrl::parse(bad), None, "{bad}");
        }
    }
}
