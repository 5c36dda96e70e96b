//! `spawn!(FUT, OPTION, …)`: its arguments, checked, and what it becomes.

use proc_macro2::{Ident, Span, TokenStream};
use quote::{ToTokens, quote, quote_spanned};

pub(crate) use self::marker::MARKER;

mod marker {
    /// The marker a rewritten `spawn!` leaves behind: the user's own
    /// `spawn!` path invoked with it expands to nothing, and keeps
    /// `use nursery::spawn` from being reported unused.
    pub(crate) const MARKER: &str = "__nursery_rewritten";
}
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned;
use syn::{Expr, Token};

/// The generated local that holds `&Nursery` inside a `#[nursery]` body.
pub(crate) fn handle_ident() -> Ident {
    Ident::new("__nursery_handle", Span::mixed_site())
}

pub(crate) struct SpawnArgs {
    fut: Expr,
    name: Option<Expr>,
    shield: Option<Ident>,
    background: Option<Ident>,
    /// `parallel`, or `parallel = BOOL` (chosen at run time).
    parallel: Option<(Ident, Option<Expr>)>,
    /// `timeout = DUR`, `deadline = INSTANT` or `fail_after = DUR`.
    deadline: Option<(Ident, Expr)>,
}

impl Parse for SpawnArgs {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        if input.is_empty() {
            return Err(input.error(
                "`spawn!` needs a future to start: `spawn!(fut)` or `spawn!(fut, name = \"…\")`",
            ));
        }
        let fut: Expr = input.parse()?;
        if let Expr::Let(let_expr) = &fut {
            return Err(syn::Error::new_spanned(
                let_expr,
                "expected a future (`async { … }`, a call to an async fn), found a `let`",
            ));
        }
        let mut args = SpawnArgs {
            fut,
            name: None,
            shield: None,
            background: None,
            parallel: None,
            deadline: None,
        };
        while !input.is_empty() {
            input.parse::<Token![,]>()?;
            if input.is_empty() {
                break;
            }
            let option: Ident = input.call(syn::ext::IdentExt::parse_any)?;
            let repeated = || {
                syn::Error::new_spanned(
                    &option,
                    format!("repeated option `{option}`: write it once"),
                )
            };
            match option.to_string().as_str() {
                "name" => {
                    if args.name.is_some() {
                        return Err(repeated());
                    }
                    if !input.peek(Token![=]) {
                        return Err(syn::Error::new_spanned(
                            &option,
                            "`name` needs a value: `name = \"…\"`",
                        ));
                    }
                    input.parse::<Token![=]>()?;
                    args.name = Some(input.parse()?);
                }
                "shield" | "background" => {
                    if input.peek(Token![=]) {
                        return Err(syn::Error::new_spanned(
                            &option,
                            format!("`{option}` takes no value: write `{option}` alone"),
                        ));
                    }
                    let (this, other, other_name) = if option == "shield" {
                        (&mut args.shield, &args.background, "background")
                    } else {
                        (&mut args.background, &args.shield, "shield")
                    };
                    if this.is_some() {
                        return Err(repeated());
                    }
                    if other.is_some() {
                        return Err(syn::Error::new_spanned(
                            &option,
                            format!(
                                "`{option}` cannot be combined with `{other_name}`: a background child is \
                                 cancelled once the rest is done, a shielded one is never cancelled"
                            ),
                        ));
                    }
                    *this = Some(option);
                }
                "parallel" => {
                    if args.parallel.is_some() {
                        return Err(repeated());
                    }
                    let when = if input.peek(Token![=]) {
                        input.parse::<Token![=]>()?;
                        Some(input.parse::<Expr>()?)
                    } else {
                        None
                    };
                    args.parallel = Some((option, when));
                }
                "timeout" | "deadline" | "fail_after" => {
                    if let Some((first, _)) = &args.deadline {
                        return Err(syn::Error::new_spanned(
                            &option,
                            if *first == option {
                                format!("repeated option `{option}`: write it once")
                            } else {
                                format!(
                                    "`{option}` cannot be combined with `{first}`: a child has one \
                                     deadline of its own; keep the one you mean"
                                )
                            },
                        ));
                    }
                    if !input.peek(Token![=]) {
                        let what = if option == "deadline" {
                            "an `Instant`"
                        } else {
                            "a `Duration`"
                        };
                        return Err(syn::Error::new_spanned(
                            &option,
                            format!("`{option}` needs a value: `{option} = …` ({what})"),
                        ));
                    }
                    input.parse::<Token![=]>()?;
                    args.deadline = Some((option, input.parse()?));
                }
                _ => {
                    return Err(syn::Error::new_spanned(
                        &option,
                        format!(
                            "unknown option `{option}`: the options are `name = \"…\"`, \
                             `shield`, `background`, `parallel`, `timeout = …`, `deadline = …` \
                             and `fail_after = …`"
                        ),
                    ));
                }
            }
        }
        Ok(args)
    }
}

/// Which of our macros: `spawn!(fut, …)` or `start!(|status| fut, …)`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verb {
    Spawn,
    Start,
}

impl Verb {
    pub(crate) fn of(name: &str) -> Option<Verb> {
        match name {
            "spawn" => Some(Verb::Spawn),
            "start" => Some(Verb::Start),
            _ => None,
        }
    }
}

/// What `spawn!(…)` or `start!(…)` becomes inside a `#[nursery]` body;
/// `path` is the path the user wrote (`spawn`, `nursery::spawn`).
pub(crate) fn expand(
    verb: Verb,
    path: TokenStream,
    tokens: TokenStream,
    call_span: Span,
) -> TokenStream {
    let marker = Ident::new(MARKER, call_span);
    let args: syn::Result<SpawnArgs> = if tokens.is_empty() {
        Err(syn::Error::new(
            call_span,
            match verb {
                Verb::Spawn => {
                    "`spawn!` needs a future to start: `spawn!(fut)` or `spawn!(fut, name = \"…\")`"
                }
                Verb::Start => {
                    "`start!` needs a closure that takes the task status: `start!(|status| fut)`"
                }
            },
        ))
    } else {
        syn::parse2(tokens)
    };
    let args = match args {
        Ok(args) => args,
        Err(error) => {
            let error = error.to_compile_error();
            return quote!({ #path!(@#marker); #error });
        }
    };
    let handle = handle_ident();
    let fut = &args.fut;
    let span = fut.span();
    let fut_local = Ident::new("__nursery_fut", Span::mixed_site());
    let err_local = Ident::new("__nursery_err", Span::mixed_site());
    let out_local = Ident::new("__nursery_out", Span::mixed_site());
    // The spawned expression names the child in traces when it has no name.
    let label = label_of(fut);
    // `&"…"`: a thin `&'static &'static str`, 8 bytes where it is kept.
    let mut builder = quote_spanned!(call_span=> #handle.builder().__label(&#label));
    if let Some(name) = &args.name {
        builder = quote_spanned!(name.span()=> #builder.name(#name));
    }
    if let Some(shield) = &args.shield {
        builder = quote_spanned!(shield.span()=> #builder.shield());
    }
    if let Some(background) = &args.background {
        builder = quote_spanned!(background.span()=> #builder.background());
    }
    if let Some((option, value)) = &args.deadline {
        builder = quote_spanned!(option.span()=> #builder.#option(#value));
    }
    match &args.parallel {
        Some((parallel, None)) => {
            builder = quote_spanned!(parallel.span()=> #builder.parallel());
        }
        Some((parallel, Some(when))) => {
            builder = quote_spanned!(parallel.span()=> #builder.parallel_if(#when));
        }
        None => {}
    }
    if verb == Verb::Start {
        // The closure is called with the `TaskStatus`; `start!` awaits, like
        // `join!`, and evaluates to the value passed to `started`.
        return quote! {
            {
                #path!(@#marker);
                #builder.start(#fut).await
            }
        };
    }
    let loop_kind = loop_tail(fut);
    let mut fut_expr = if loop_kind == LoopTail::Fallible {
        // A loop left only through `?`: its output is `Result<(), E>`.
        quote_spanned!(span=> ::nursery::__private::unit_result(#fut))
    } else {
        quote!(#fut)
    };
    if args.parallel.is_some() {
        // `Send + 'static`, checked at the user's expression.
        fut_expr = quote_spanned!(span=> ::nursery::__private::parallel_child(#fut_expr));
    }
    let classify = if loop_kind == LoopTail::Never || never_returns(fut) {
        // Its output type is a diverging inference variable, which only
        // falls back to `()` if nothing dispatches on it first.
        quote_spanned! {span=>
            #fut_local.await;
            ::nursery::__private::Value(())
        }
    } else {
        quote_spanned! {span=>
            #[allow(unused_imports)]
            use ::nursery::__private::{ClassifyNested as _, ClassifyResult as _, ClassifyValue as _};
            #[allow(clippy::unit_arg)] // a child that returns `()`
            let #out_local =
                ::nursery::__private::Classify::new(#fut_local.await, #err_local).__nursery_classify();
            #out_local
        }
    };
    let spawn = quote_spanned!(span=> #builder.spawn(async move { #classify }));
    quote! {
        {
            #path!(@#marker);
            let #fut_local = #fut_expr;
            let #err_local = ::nursery::__private::error_of(#handle);
            #spawn
        }
    }
}

/// The expression as a user would write it: token text without the spaces
/// `to_string` puts around paths, generics, calls and fields.
fn label_of(fut: &Expr) -> String {
    let mut text = fut.to_token_stream().to_string();
    for (spaced, tight) in [
        (" :: ", "::"),
        (":: ", "::"),
        (" ::", "::"),
        (" < ", "<"),
        ("< ", "<"),
        (" >", ">"),
        (" (", "("),
        ("( ", "("),
        (" )", ")"),
        (" . ", "."),
        (" .", "."),
        (" ,", ","),
        (" ?", "?"),
        ("& ", "&"),
        (" !", "!"),
    ] {
        text = text.replace(spaced, tight);
    }
    text
}

#[derive(PartialEq, Eq)]
enum LoopTail {
    /// Not an async block ending in a `loop`.
    No,
    /// A `loop` with no `break`, `return` or `?`: it never returns.
    Never,
    /// A `loop` left only through `?`.
    Fallible,
    /// A `loop` with `break` or `return`: its type is what they give.
    Exits,
}

fn loop_tail(fut: &Expr) -> LoopTail {
    let Expr::Async(block) = fut else {
        return LoopTail::No;
    };
    let Some(syn::Stmt::Expr(Expr::Loop(l), _)) = block.block.stmts.last() else {
        return LoopTail::No;
    };
    let tokens: Vec<_> = l.body.to_token_stream().into_iter().collect();
    if tokens
        .iter()
        .any(|t| contains_ident(t, "break") || contains_ident(t, "return"))
    {
        LoopTail::Exits
    } else if tokens.iter().any(contains_question_mark) {
        LoopTail::Fallible
    } else {
        LoopTail::Never
    }
}

/// Whether `fut` is an async block that visibly never returns: its last
/// statement is `panic!`, `unreachable!`, `todo!`, `unimplemented!` or a
/// diverging std function.
fn never_returns(fut: &Expr) -> bool {
    let Expr::Async(block) = fut else {
        return false;
    };
    let last = match block.block.stmts.last() {
        Some(syn::Stmt::Expr(expr, _)) => expr,
        Some(syn::Stmt::Macro(m)) => return is_diverging_macro(&m.mac),
        _ => return false,
    };
    match last {
        Expr::Macro(m) => is_diverging_macro(&m.mac),
        Expr::Call(call) => match &*call.func {
            Expr::Path(p) => p.path.segments.last().is_some_and(|s| {
                matches!(
                    s.ident.to_string().as_str(),
                    "panic_any" | "resume_unwind" | "exit" | "abort"
                )
            }),
            _ => false,
        },
        _ => false,
    }
}

fn is_diverging_macro(mac: &syn::Macro) -> bool {
    mac.path.segments.last().is_some_and(|s| {
        matches!(
            s.ident.to_string().as_str(),
            "panic" | "unreachable" | "todo" | "unimplemented"
        )
    })
}

fn contains_ident(tt: &proc_macro2::TokenTree, word: &str) -> bool {
    match tt {
        proc_macro2::TokenTree::Ident(i) => i == word,
        proc_macro2::TokenTree::Group(g) => {
            g.stream().into_iter().any(|t| contains_ident(&t, word))
        }
        _ => false,
    }
}

fn contains_question_mark(tt: &proc_macro2::TokenTree) -> bool {
    match tt {
        proc_macro2::TokenTree::Punct(p) => p.as_char() == '?',
        proc_macro2::TokenTree::Group(g) => {
            g.stream().into_iter().any(|t| contains_question_mark(&t))
        }
        _ => false,
    }
}

/// `spawn!` or `start!` that no `#[nursery]` rewrote: it is outside a
/// nursery body.
pub(crate) fn outside_nursery(verb: Verb, input: TokenStream) -> TokenStream {
    let mut tts = input.clone().into_iter();
    if let (Some(proc_macro2::TokenTree::Punct(at)), Some(proc_macro2::TokenTree::Ident(m)), None) =
        (tts.next(), tts.next(), tts.next())
    {
        if at.as_char() == '@' && m == MARKER {
            return TokenStream::new();
        }
    }
    let (name, method) = match verb {
        Verb::Spawn => ("spawn", ".spawn(fut)"),
        Verb::Start => ("start", ".start(|status| fut).await"),
    };
    syn::Error::new(
        Span::call_site(),
        format!(
            "`{name}!` can only be used inside the body of a `#[nursery]` fn or a `scope!` \
             (a nested `fn` item there has no nursery): add `#[nursery]` to the enclosing `async fn`, \
             or call `{method}` on a `Nursery` handle"
        ),
    )
    .to_compile_error()
}
