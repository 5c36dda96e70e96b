//! Rewrites every `spawn!` of a `#[nursery]` body, stopping at nested items
//! (which have no nursery). Inside other macros (`tokio::select!`, `vec!`,
//! `println!`), whose arguments syn cannot parse, `spawn!(…)` is found and
//! rewritten at the token level.

use proc_macro2::{Delimiter, Group, Spacing, TokenStream, TokenTree};
use quote::ToTokens;
use syn::visit_mut::{self, VisitMut};
use syn::{Expr, ExprMacro, Item, Macro, Stmt};

use crate::spawn::{self, Verb};

pub(crate) struct SpawnRewriter {
    /// The user's name for the nursery handle (`#[nursery(n)]`, or the
    /// closure's argument of `scope!`).
    handle: Option<proc_macro2::Ident>,
    /// Inside the arguments of a call that starts a detached task or
    /// thread (`tokio::spawn(…)`), which this nursery cannot own.
    detached: Option<String>,
    /// A `spawn!` was reported as an error: the item's other warnings
    /// (code after it now unreachable) are noise.
    pub(crate) failed: bool,
}

/// Calls that start a task or thread of their own: a `spawn!` inside one
/// would put a child of this nursery into something that outlives it.
fn detaching_call(call: &syn::ExprCall) -> Option<String> {
    let Expr::Path(path) = &*call.func else {
        return None;
    };
    let segments: Vec<String> = path
        .path
        .segments
        .iter()
        .map(|s| s.ident.to_string())
        .collect();
    let last = segments.last()?;
    let detaches = matches!(last.as_str(), "spawn" | "spawn_blocking" | "spawn_local")
        && segments.len() >= 2
        && matches!(
            segments[0].as_str(),
            "tokio" | "std" | "thread" | "task" | "async_std" | "smol"
        );
    detaches.then(|| segments.join("::"))
}

/// Whether a `spawn!`'s arguments ask for `parallel` and its future names
/// `handle`: the handle's first mention there, if so.
fn parallel_uses_handle(
    tokens: &TokenStream,
    handle: &proc_macro2::Ident,
) -> Option<proc_macro2::Span> {
    let mut parts = vec![Vec::new()];
    for tt in tokens.clone() {
        match &tt {
            TokenTree::Punct(p) if p.as_char() == ',' => parts.push(Vec::new()),
            _ => parts.last_mut().expect("never empty").push(tt),
        }
    }
    let parallel = parts[1..]
        .iter()
        .any(|opt| matches!(opt.first(), Some(TokenTree::Ident(i)) if i == "parallel"));
    if !parallel {
        return None;
    }
    find_ident(parts[0].iter().cloned().collect(), handle)
}

fn find_ident(tokens: TokenStream, wanted: &proc_macro2::Ident) -> Option<proc_macro2::Span> {
    tokens.into_iter().find_map(|tt| match tt {
        TokenTree::Ident(i) if i == *wanted => Some(i.span()),
        TokenTree::Group(g) => find_ident(g.stream(), wanted),
        _ => None,
    })
}

/// Whether `mac` is `name!` or `nursery::name!`.
fn is_ours(mac: &Macro, name: &str) -> bool {
    let segments = &mac.path.segments;
    match segments.len() {
        1 => segments[0].ident == name,
        2 => segments[0].ident == "nursery" && segments[1].ident == name,
        _ => false,
    }
}

/// A `spawn!` or `start!` to rewrite: not one already rewritten
/// (`spawn!(@marker)`).
fn verb_of(mac: &Macro) -> Option<Verb> {
    if starts_with_at(&mac.tokens) {
        return None;
    }
    [Verb::Spawn, Verb::Start]
        .into_iter()
        .find(|v| is_ours(mac, if *v == Verb::Spawn { "spawn" } else { "start" }))
}

fn starts_with_at(tokens: &TokenStream) -> bool {
    matches!(tokens.clone().into_iter().next(), Some(TokenTree::Punct(p)) if p.as_char() == '@')
}

impl SpawnRewriter {
    /// The rewriter of a nursery whose handle the user calls `handle`.
    pub(crate) fn new(handle: Option<proc_macro2::Ident>) -> Self {
        SpawnRewriter {
            handle,
            detached: None,
            failed: false,
        }
    }

    /// A `spawn!`/`start!` this nursery cannot take, said at the user's
    /// tokens; otherwise its expansion.
    fn rewrite(&mut self, mac: &Macro) -> Expr {
        let verb = if verb_of(mac) == Some(Verb::Start) {
            "start!"
        } else {
            "spawn!"
        };
        if let Some(call) = &self.detached {
            let message = format!(
                "`{verb}` inside `{call}(…)`: that task is not a child of this nursery and may outlive it; \
                 start the child here, outside the call (with `parallel` to run it on another thread), \
                 or give the task a `'static` value such as `n.cancel_token()`"
            );
            self.failed = true;
            return error_expr(mac, mac.path.segments[0].ident.span(), &message);
        }
        if let Some(handle) = &self.handle
            && let Some(span) = parallel_uses_handle(&mac.tokens, handle)
        {
            let message = format!(
                "a `parallel` child cannot use the nursery handle `{handle}`: it runs on another thread and \
                 must be `'static`; give it `{handle}.cancel_token()` (a `CancelToken`: `cancelled()`, `cancel()`) \
                 or drop `parallel`"
            );
            self.failed = true;
            return error_expr(mac, span, &message);
        }
        rewrite(mac)
    }
}

/// `compile_error!(message)` at `span`, as an expression of any type (the
/// macro's path is still used, so its import is not reported unused).
fn error_expr(mac: &Macro, span: proc_macro2::Span, message: &str) -> Expr {
    let error = syn::Error::new(span, message).to_compile_error();
    let path = &mac.path;
    let marker = proc_macro2::Ident::new(spawn::MARKER, mac.bang_token.spans[0]);
    syn::parse2(quote::quote!({ #path!(@#marker); #error; ::core::unreachable!() }))
        .expect("an expression")
}

fn rewrite(mac: &Macro) -> Expr {
    let span = mac.bang_token.spans[0];
    let path = mac.path.to_token_stream();
    let verb = verb_of(mac).expect("rewrite is called on our macros only");
    let tokens = spawn::expand(verb, path, rewrite_tokens(mac.tokens.clone()), span);
    syn::parse2(tokens).expect("the expansion of `spawn!` is an expression")
}

impl VisitMut for SpawnRewriter {
    fn visit_item_mut(&mut self, _: &mut Item) {
        // A nested item has no nursery: a `spawn!` there stays as it is and
        // reports so itself.
    }

    fn visit_expr_mut(&mut self, expr: &mut Expr) {
        if let Expr::Call(call) = expr
            && let Some(detaching) = detaching_call(call)
        {
            let outer = self.detached.replace(detaching);
            visit_mut::visit_expr_mut(self, expr);
            self.detached = outer;
            return;
        }
        if let Expr::Macro(ExprMacro { mac, .. }) = expr {
            if is_ours(mac, "scope") {
                return; // a nested nursery: its `spawn!`s are its own
            }
            if verb_of(mac).is_some() {
                *expr = self.rewrite(mac);
                return;
            }
            mac.tokens = rewrite_tokens(mac.tokens.clone());
            return;
        }
        visit_mut::visit_expr_mut(self, expr);
    }

    fn visit_stmt_mut(&mut self, stmt: &mut Stmt) {
        if let Stmt::Macro(m) = stmt {
            if is_ours(&m.mac, "scope") {
                return; // a nested nursery: its `spawn!`s are its own
            }
            if verb_of(&m.mac).is_some() {
                let expr = self.rewrite(&m.mac);
                *stmt = Stmt::Expr(expr, m.semi_token);
                return;
            }
            m.mac.tokens = rewrite_tokens(m.mac.tokens.clone());
            return;
        }
        visit_mut::visit_stmt_mut(self, stmt);
    }
}

/// Token-level rewrite of `spawn!(…)` / `nursery::spawn!(…)` inside another
/// macro's arguments. Nested `fn` items inside macro arguments are not
/// detected there; they are rare.
pub(crate) fn rewrite_tokens(tokens: TokenStream) -> TokenStream {
    replace_spawn_calls(tokens, &mut |verb, path, bang, args| {
        spawn::expand(verb, path, rewrite_tokens(args), bang.span())
    })
}

/// Replaces every `spawn!(…)` in `tokens` by an expression that type-checks
/// anywhere (`unreachable!()`), for the item emitted beside an error.
pub(crate) fn defuse_tokens(tokens: TokenStream) -> TokenStream {
    replace_spawn_calls(tokens, &mut |_, path, bang, _| {
        let marker = proc_macro2::Ident::new(spawn::MARKER, bang.span());
        quote::quote!({ #path!(@#marker); ::core::unreachable!() })
    })
}

/// Finds every `spawn!(…)` and `nursery::spawn!(…)` in `tokens`, at any
/// depth, and puts `with(path, bang, arguments)` (parenthesised) in its place.
fn replace_spawn_calls(
    tokens: TokenStream,
    with: &mut dyn FnMut(Verb, TokenStream, &proc_macro2::Punct, TokenStream) -> TokenStream,
) -> TokenStream {
    let tts: Vec<TokenTree> = tokens.into_iter().collect();
    let mut out: Vec<TokenTree> = Vec::with_capacity(tts.len());
    let mut i = 0;
    while i < tts.len() {
        if let (
            TokenTree::Ident(ident),
            Some(TokenTree::Punct(bang)),
            Some(TokenTree::Group(group)),
        ) = (&tts[i], tts.get(i + 1), tts.get(i + 2))
        {
            let qualified = preceded_by_nursery_path(&out);
            let ours = bang.as_char() == '!' && (qualified || !preceded_by_path(&out));
            if ours && ident == "scope" {
                // a nested nursery: its `spawn!`s are its own
                out.extend(tts[i..i + 3].iter().cloned());
                i += 3;
                continue;
            }
            let verb = Verb::of(&ident.to_string());
            if let (true, Some(verb), false) = (ours, verb, starts_with_at(&group.stream())) {
                let mut path: Vec<TokenTree> = if qualified {
                    out.split_off(out.len() - 3) // `nursery` `:` `:`
                } else {
                    Vec::new()
                };
                path.push(TokenTree::Ident(ident.clone()));
                let replacement = with(verb, path.into_iter().collect(), bang, group.stream());
                let mut wrapped = Group::new(Delimiter::Parenthesis, replacement);
                wrapped.set_span(group.span());
                out.push(TokenTree::Group(wrapped));
                i += 3;
                continue;
            }
        }
        match &tts[i] {
            TokenTree::Group(g) => {
                let mut ng = Group::new(g.delimiter(), replace_spawn_calls(g.stream(), with));
                ng.set_span(g.span());
                out.push(TokenTree::Group(ng));
            }
            other => out.push(other.clone()),
        }
        i += 1;
    }
    out.into_iter().collect()
}

fn preceded_by_path(out: &[TokenTree]) -> bool {
    matches!(out.last(), Some(TokenTree::Punct(p)) if p.as_char() == ':')
}

fn preceded_by_nursery_path(out: &[TokenTree]) -> bool {
    let n = out.len();
    n >= 3
        && matches!(&out[n - 1], TokenTree::Punct(p) if p.as_char() == ':')
        && matches!(&out[n - 2], TokenTree::Punct(p) if p.as_char() == ':' && p.spacing() == Spacing::Joint)
        && matches!(&out[n - 3], TokenTree::Ident(i) if i == "nursery")
        && !matches!(out.get(n.wrapping_sub(4)), Some(TokenTree::Punct(p)) if p.as_char() == ':')
}
