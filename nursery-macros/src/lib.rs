//! Procedural macros of the `nursery` crate. Depend on `nursery`, not on
//! this crate.
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]
use proc_macro::TokenStream;

/// See `nursery::nursery`.
#[proc_macro_attribute]
pub fn nursery(_args: TokenStream, item: TokenStream) -> TokenStream {
    item
}
