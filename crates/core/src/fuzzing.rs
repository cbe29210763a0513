//! Entry points for the fuzz targets of `fuzz/` (feature `fuzzing`), not API: internals of
//! the engine that read what a server sends, callable on arbitrary bytes.

pub use crate::tunnel::connector::{dechunk_body, parse_upgrade_reply};
