//! Procedural macros of the `nursery` crate: `#[nursery]` and `spawn!`.
//! Depend on `nursery`, which re-exports them with their documentation.
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

mod args;
#[cfg(test)]
mod corpus_tests;
mod expand;
mod scope;
mod spawn;
mod validate;
mod visit;

use proc_macro::TokenStream;

/// Turns the body of an `async fn` into a nursery. See `nursery::nursery`.
#[proc_macro_attribute]
pub fn nursery(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::nursery(args.into(), item.into()).into()
}

/// Starts a child inside a `#[nursery]` body. See `nursery::spawn`.
#[proc_macro]
pub fn spawn(input: TokenStream) -> TokenStream {
    spawn::outside_nursery(spawn::Verb::Spawn, input.into()).into()
}

/// Starts a child and waits until it reports itself started, inside a
/// `#[nursery]` body. See `nursery::start`.
#[proc_macro]
pub fn start(input: TokenStream) -> TokenStream {
    spawn::outside_nursery(spawn::Verb::Start, input.into()).into()
}

/// A nursery as an expression. See `nursery::scope`.
#[proc_macro]
pub fn scope(input: TokenStream) -> TokenStream {
    scope::expand(input.into()).into()
}
