//! Unit tests of the client's helpers and configuration.

use super::wire::{decode, parse_retry_after};
use super::*;

#[test]
fn retry_after_reads_seconds_and_ignores_dates() {
    assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
    assert_eq!(parse_retry_after(" 0.5 "), Some(Duration::from_millis(500)));
    assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    assert_eq!(parse_retry_after("-1"), None);
}

#[test]
fn path_segments_are_escaped() {
    assert_eq!(seg("user_01AbC-9"), "user_01AbC-9");
    assert_eq!(seg("a/b?c"), "a%2Fb%3Fc");
}

#[test]
fn config_debug_hides_the_key() {
    let c = ClientConfig::new("http://127.0.0.1:1", "sk-ant-api01-secret");
    assert!(!format!("{c:?}").contains("secret"));
    let client = HttpCoworkClient::new(c).unwrap();
    assert!(!format!("{client:?}").contains("secret"));
    assert!(HttpCoworkClient::new(ClientConfig::new("ftp://x", "k")).is_err());
    assert!(HttpCoworkClient::new(ClientConfig::new("http://x", " ")).is_err());
}

#[test]
fn decode_errors_name_the_type_not_the_values() {
    let err = decode::<User>(br#"{"type":"user","id":"user_01","email":"secret@example.com"}"#)
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("User"), "{text}");
    assert!(!text.contains("secret"), "{text}");
}
