//! `ApiVersion::from_str`: never a panic; a parsed version prints as a string that parses
//! back to it; the error is one line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use porthole_core::api::version::ApiVersion;

fuzz_target!(|data: &str| {
    match data.parse::<ApiVersion>() {
        Ok(version) => {
            let shown = version.to_string();
            let back: ApiVersion = shown
                .parse()
                .unwrap_or_else(|e| panic!("{shown:?} from {data:?} does not re-parse: {e}"));
            assert_eq!(back, version);
            let negotiated = ApiVersion::negotiate(version);
            assert!(negotiated <= version);
            let _ = (
                version.stream_paths().prefix(),
                version.download_single_is_post(),
                version.has_admin_gql(),
            );
        }
        Err(e) => {
            let text = e.to_string();
            assert!(!text.contains(['\n', '\r']), "not one line: {text:?}");
        }
    }
});
