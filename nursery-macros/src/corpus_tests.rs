//! The macros never panic: a corpus of malformed inputs, each of which must
//! give a `compile_error!` (and output that still parses as Rust), driven
//! through the expansion functions on `proc_macro2`.

use proc_macro2::TokenStream;
use std::panic::{AssertUnwindSafe, catch_unwind};

thread_local! {
    static NO_ERROR: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn ts(s: &str) -> TokenStream {
    s.parse()
        .unwrap_or_else(|e| panic!("test input {s:?} does not lex: {e}"))
}

/// Expands `#[nursery(args)] item`; the output must hold a compile error.
fn check_attribute(args: &str, item: &str, cases: &mut usize) {
    *cases += 1;
    let out = catch_unwind(AssertUnwindSafe(|| {
        crate::expand::nursery(ts(args), ts(item))
    }))
    .unwrap_or_else(|_| panic!("#[nursery({args})] panicked on {item:?}"));
    let text = out.to_string();
    if !text.contains("compile_error") {
        NO_ERROR.with(|v| v.borrow_mut().push(format!("#[nursery({args})] {item}")));
        return;
    }
    // The item is emitted again beside the error (so one mistake does not
    // cascade): when the user's item is valid Rust, so is the output; when
    // it is not, rustc reports the user's own syntax error at its span.
    if syn::parse2::<syn::File>(ts(item)).is_ok() {
        syn::parse2::<syn::File>(out).unwrap_or_else(|e| {
            panic!("#[nursery({args})] on {item:?}: output does not parse: {e}")
        });
    }
}

fn check_macro(f: fn(TokenStream) -> TokenStream, what: &str, input: &str, cases: &mut usize) {
    *cases += 1;
    let out = catch_unwind(AssertUnwindSafe(|| f(ts(input))))
        .unwrap_or_else(|_| panic!("{what}!({input}) panicked"));
    assert!(
        out.to_string().contains("compile_error"),
        "{what}!({input}) gave no error: {out}"
    );
    syn::parse2::<syn::Expr>(quote::quote!({ #out }))
        .unwrap_or_else(|e| panic!("{what}!({input}): output does not parse: {e}"));
}

const VALID: &[&str] = &[
    "async fn f() { spawn!(async {}); }",
    "async fn g(x: &u32) -> Result<u32, nursery::Errors<std::io::Error>> { let t = spawn!(async move { Ok(*x) }, name = \"x\"); Ok(t.await) }",
    "pub async fn h<T: Send>(t: T) -> T where T: Clone { spawn!(async {}, shield); t }",
];

#[test]
fn no_malformed_input_makes_a_macro_panic() {
    let mut cases = 0;

    // every truncation of valid fns (that still lexes), under the attribute
    for valid in VALID {
        let tokens: Vec<_> = ts(valid).into_iter().collect();
        for cut in 0..tokens.len() {
            let prefix: TokenStream = tokens[..cut].iter().cloned().collect();
            if syn::parse2::<syn::ItemFn>(prefix.clone()).is_ok() {
                continue; // a valid (non-async?) fn: covered below
            }
            check_attribute("", &prefix.to_string(), &mut cases);
        }
    }

    // items that are not an async fn
    for item in [
        "struct S;",
        "enum E { A }",
        "fn sync() {}",
        "const fn c() {}",
        "impl S {}",
        "trait T {}",
        "mod m {}",
        "use std::io;",
        "static X: u8 = 0;",
        "type A = u8;",
        "macro_rules! m { () => {} }",
        "extern \"C\" { fn f(); }",
        "union U { a: u8 }",
        "fn main() { let body = async {}; block_on(body) }",
        "",
        "async",
        "async fn",
        "fn",
        "{}",
        "1 + 1",
    ] {
        check_attribute("", item, &mut cases);
    }

    // odd attribute arguments
    for args in [
        "local, local",
        "n, m",
        "timeout",
        "timeout = ",
        "grace",
        "timeout = 1, timeout = 2",
        "grace = 1, grace = 2",
        "whatever = 1",
        "self",
        "1",
        "\"n\"",
        "n = ",
        "= n",
        ",",
        "n,,",
        "n local",
        "(n)",
        "[n]",
        "n: u8",
        "n, local, timeout",
        "timeout(1)",
        "::n",
        "n::m",
        "local = true",
        "'a",
        "async",
    ] {
        check_attribute(args, "async fn f() {}", &mut cases);
        check_attribute(
            args,
            "async fn f() -> Result<(), nursery::Errors<u8>> { Ok(()) }",
            &mut cases,
        );
    }

    // `timeout` on a fn that cannot report it
    check_attribute(
        "timeout = std::time::Duration::from_secs(1)",
        "async fn f() {}",
        &mut cases,
    );
    // `impl Trait` in the return type
    check_attribute("", "async fn f() -> impl std::fmt::Debug { 1 }", &mut cases);

    // spawn! and start! with missing or extra parts, inside a body
    for args in [
        "",
        ",",
        "fut, ,",
        "fut, name",
        "fut, name =",
        "fut, name = \"a\", name = \"b\"",
        "fut, shield, shield",
        "fut, background, background",
        "fut, shield, background",
        "fut, background, shield",
        "fut, parallel =",
        "fut, parallel, parallel",
        "fut, parallel(2)",
        "fut, detached",
        "fut, shield = true",
        "fut, background = 1",
        "fut name",
        "fut; other",
        "=>",
        "fut, 1",
        "fut, \"name\"",
        "fut, name = ",
        "fut, ::shield",
        "let x = 1",
        "fut, name: \"x\"",
        "async {}, async {}",
    ] {
        for verb in ["spawn", "start", "nursery::spawn"] {
            let item = format!("async fn f() {{ {verb}!({args}); }}");
            // an empty `spawn!()` is reported; a valid-looking future that
            // is not (`async {}, async {}`) too: every one must error
            if args == "async {}, async {}" && verb != "start" {
                check_attribute("", &item, &mut cases);
                continue;
            }
            check_attribute("", &item, &mut cases);
        }
    }

    // the stand-alone macros outside a nursery
    for input in [
        "",
        "fut",
        "async {}",
        "fut, shield",
        "|s| async move { s.started(1) }",
        "@other",
    ] {
        check_macro(
            |t| crate::spawn::outside_nursery(crate::spawn::Verb::Spawn, t),
            "spawn",
            input,
            &mut cases,
        );
        check_macro(
            |t| crate::spawn::outside_nursery(crate::spawn::Verb::Start, t),
            "start",
            input,
            &mut cases,
        );
    }

    // scope! with the wrong shape
    for input in [
        "",
        "async {}",
        "|n, m| async {}",
        "async |n| async {}",
        "detached, |n| async {}",
        "local",
        "local,",
        "|n| async {}, extra",
        "|(a, b)| async {}",
        "|ref n| async {}",
        "n => async {}",
        "|n| async { spawn!(); }",
        "|n| async { spawn!(fut, unknown); }",
    ] {
        check_macro(crate::scope::expand, "scope", input, &mut cases);
    }

    let missed = NO_ERROR.with(|v| v.take());
    assert!(
        missed.is_empty(),
        "no compile error for:\n{}",
        missed.join("\n")
    );
    assert!(
        cases >= 200,
        "the corpus has {cases} cases; it should have at least 200"
    );
}
