//! ATR
