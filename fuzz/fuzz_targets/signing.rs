//! Request-signing canonicalisation: the string to sign is deterministic and has its seven
//! fields in place, the signature is deterministic 64-digit hex, and `day_of_iso_date`
//! gives eight digits taken from the date's own prefix.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use porthole_core::api::signing::{
    day_of_iso_date, signature, signing_key, SignedRequest, EMPTY_BODY_HASH,
};

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    method: &'a str,
    path_and_query: &'a str,
    date: &'a str,
    host: &'a str,
    content_type: &'a str,
    api_version: &'a str,
    secret_key: &'a str,
    day: &'a str,
}

fuzz_target!(|input: Input<'_>| {
    let request = SignedRequest {
        method: input.method,
        path_and_query: input.path_and_query,
        date: input.date,
        host: input.host,
        content_type: input.content_type,
        api_version: input.api_version,
    };
    let text = request.string_to_sign();
    assert_eq!(text, request.clone().string_to_sign());
    let fields = [
        input.method,
        input.path_and_query,
        input.date,
        input.host,
        input.content_type,
        input.api_version,
    ];
    if !fields.iter().any(|f| f.contains('\n')) {
        let lines: Vec<&str> = text.split('\n').collect();
        assert_eq!(lines.len(), 7, "{text:?}");
        assert_eq!(lines[0], input.method.to_ascii_uppercase());
        assert_eq!(lines[1], input.path_and_query);
        assert_eq!(lines[2], input.date);
        assert_eq!(lines[3], format!("host:{}", input.host));
        let content_type = lines[4].strip_prefix("content-type:").unwrap();
        assert!(!content_type.contains(';'));
        assert_eq!(content_type, content_type.trim());
        assert!(!content_type.bytes().any(|b| b.is_ascii_uppercase()));
        assert_eq!(
            lines[5],
            format!("x-backendai-version:{}", input.api_version)
        );
        assert_eq!(lines[6], EMPTY_BODY_HASH);
    }
    // Only the media type counts: parameters and case do not change the signature.
    let bare = input.content_type.split(';').next().unwrap_or_default();
    let upper = bare.to_ascii_uppercase();
    let variant = SignedRequest {
        content_type: &upper,
        ..request
    };
    assert_eq!(variant.string_to_sign(), text);

    let sig = signature(input.secret_key, input.day, &request);
    assert_eq!(sig, signature(input.secret_key, input.day, &request));
    assert_eq!(sig.len(), 64);
    assert!(sig
        .bytes()
        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    assert_eq!(
        signing_key(input.secret_key, input.day, input.host),
        signing_key(input.secret_key, input.day, input.host)
    );

    if let Some(day) = day_of_iso_date(input.date) {
        assert_eq!(day.len(), 8);
        assert!(day.bytes().all(|b| b.is_ascii_digit()));
        assert!(input.date.replacen('-', "", 2).starts_with(&day));
    }
});
