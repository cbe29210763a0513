//! The Backend.AI client: signing, login, version negotiation, listing, key download.

pub mod signing;
