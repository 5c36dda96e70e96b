//! The code `#[nursery]` becomes.

use proc_macro2::{Ident, Span, TokenStream, TokenTree};
use quote::{ToTokens, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::visit_mut::VisitMut;
use syn::{ItemFn, ReturnType, Stmt};

use crate::args::Args;
use crate::spawn::handle_ident;
use crate::validate::{self, Shape};
use crate::visit::SpawnRewriter;

pub(crate) fn nursery(args: TokenStream, item: TokenStream) -> TokenStream {
    let func = match validate::parse_fn(item.clone()) {
        Ok(func) => func,
        // Emit the item beside the error, so one mistake does not cascade
        // and IDEs keep working; its `spawn!`s are defused, as they can no
        // longer find a nursery.
        Err(error) => return token_stream_with_error(crate::visit::defuse_tokens(item), error),
    };
    let (args, args_error) = match syn::parse2::<Args>(args) {
        Ok(args) => (args, None),
        Err(error) => (Args::default(), Some(error)),
    };
    let mut expanded = match expand(func, &args) {
        Ok(tokens) => tokens,
        // One mistake, one error: the item's `spawn!`s are defused.
        Err(error) => return token_stream_with_error(crate::visit::defuse_tokens(item), error),
    };
    if let Some(error) = args_error {
        expanded.extend(error.to_compile_error());
    }
    expanded
}

/// The user's item, emitted beside an error so that one mistake gives one
/// error: what defusing its `spawn!`s leaves (code made unreachable,
/// parentheses, a variable now unused) is no news, so not warned about.
fn token_stream_with_error(item: TokenStream, error: syn::Error) -> TokenStream {
    let mut out = quote!(#[allow(unused)] #item);
    out.extend(error.to_compile_error());
    out
}

fn expand(mut func: ItemFn, args: &Args) -> syn::Result<TokenStream> {
    let shape = validate::shape(&func.sig.output)?;
    validate::check_handles_stay(&func.sig)?;
    if !args.local {
        validate::check_send_error(&func.sig.output)?;
    }
    let mut rewriter = SpawnRewriter::new(args.handle.clone());
    rewriter.visit_block_mut(&mut func.block);
    if rewriter.failed {
        // One mistake, one error: what follows the reported `spawn!` is
        // now unreachable, which is no news.
        func.attrs.push(syn::parse_quote!(#[allow(unused)]));
    }

    let scope = Ident::new("__nursery_scope", Span::mixed_site());
    let body = Ident::new("__nursery_body", Span::mixed_site());
    let handle = handle_ident();
    let kind = if args.local {
        quote!(::nursery::__private::Local)
    } else {
        quote!(::nursery::__private::Sendable)
    };
    let user_handle = args.handle.as_ref().map(|name| {
        quote! {
            #[allow(unused_variables)]
            let #name = #handle;
        }
    });
    let (ret, ret_span) = match &func.sig.output {
        ReturnType::Default => (quote!(()), func.sig.span()),
        ReturnType::Type(_, ty) => (ty.to_token_stream(), ty.span()),
    };
    let value_ty = match shape {
        Shape::Value => ret.clone(),
        Shape::Errors | Shape::Result => quote!(<#ret as ::nursery::__private::ResultParts>::Ok),
    };
    let on_cancel = quote! {
        || {
            #[allow(unused_imports)]
            use ::nursery::__private::NoCancelValue as _;
            ::nursery::__private::CancelValue::<#value_ty>::new().__nursery_cancel_value()
        }
    };
    // Naming `E` (rather than leaving it to inference) keeps lifetimes in it
    // out of the generator witness, where rustc would make `Send`
    // higher-ranked ("implementation of `Send` is not general enough").
    let error_ty = match shape {
        Shape::Errors => quote!(
            <<#ret as ::nursery::__private::ResultParts>::Err as ::nursery::__private::ErrorsParts>::Error
        ),
        Shape::Result => quote!(<#ret as ::nursery::__private::ResultParts>::Err),
        Shape::Value => quote!(::core::convert::Infallible),
    };
    if let (Some((name, _)), Shape::Value) = (&args.timeout, &shape) {
        return Err(syn::Error::new_spanned(
            name,
            "`timeout` needs a fn that returns a `Result`: the deadline is reported as an error \
             (`-> Result<_, nursery::Errors<E>>` with `E: From<nursery::TimedOut>`)",
        ));
    }
    // The statements before the nursery opens run before it exists, so
    // children may borrow every local they declare; items are hoisted
    // (they are visible in the whole block wherever they are written).
    let (items, mut prefix, mut rest) = split_at_opening(&func.block.stmts, args.handle.as_ref());
    // The body is an async block, whose output type would come from its
    // first `return`: each is checked against the fn's type where it is.
    let mut typer = ReturnTyper(ret_of(&func.sig.output));
    for stmt in &mut rest {
        typer.visit_stmt_mut(stmt);
    }
    let deadline = Ident::new("__nursery_deadline", Span::mixed_site());
    let early_deadline = args.timeout.is_some() && !prefix.is_empty();
    if early_deadline {
        // Those statements run in an async block too (under the deadline).
        for stmt in &mut prefix {
            typer.visit_stmt_mut(stmt);
        }
    }
    let settings = settings(args, &handle, early_deadline.then_some(&deadline));
    let fn_name = func.sig.ident.to_string();
    let run = match shape {
        Shape::Errors => quote! {
            ::nursery::__private::run_errors(#scope, #body, #on_cancel).await
        },
        Shape::Result => {
            let convert = quote_spanned!(ret_span=> errors.into_return_error());
            quote! {
                match ::nursery::__private::run_result(#scope, #body, #on_cancel).await {
                    ::core::result::Result::Ok(value) => ::core::result::Result::Ok(value),
                    ::core::result::Result::Err(errors) => ::core::result::Result::Err(#convert),
                }
            }
        }
        Shape::Value => quote! {
            ::nursery::__private::run_value(#scope, #body, #on_cancel).await
        },
    };
    let nursery = quote! {
        let #scope = ::core::pin::pin!(::nursery::__private::Nursery::<#error_ty, #kind>::named(#fn_name));
        let #scope = #scope.into_ref();
        let #handle = ::nursery::__private::handle(#scope);
        #user_handle
        #settings
        let #body = ::nursery::__private::body::<#ret, _>(async { #(#rest)* });
        #run
    };
    let block = match (&args.timeout, early_deadline) {
        // `timeout` covers the statements before the nursery too: they and
        // the nursery run under the deadline, which the nursery's `timeout`
        // child takes over once it opens.
        (Some((_, value)), true) => {
            let timed_out = match shape {
                Shape::Result => {
                    quote_spanned!(ret_span=> errors.into_return_error())
                }
                Shape::Errors | Shape::Value => quote!(errors),
            };
            let span = value.span();
            let start = quote_spanned!(span=> ::nursery::__private::fn_deadline(#value));
            quote! {
                {
                    #(#items)*
                    let #deadline = #start;
                    match ::nursery::__private::before_deadline::<#error_ty, _>(
                        &#deadline,
                        #fn_name,
                        ::nursery::__private::body::<#ret, _>(async { #(#prefix)* #nursery }),
                    )
                    .await
                    {
                        ::core::result::Result::Ok(out) => out,
                        ::core::result::Result::Err(errors) => ::core::result::Result::Err(#timed_out),
                    }
                }
            }
        }
        _ => quote! {
            {
                #(#items)*
                #(#prefix)*
                #nursery
            }
        },
    };
    func.block = Box::new(syn::parse2(block)?);
    Ok(func.into_token_stream())
}

/// The statements that apply a nursery's arguments (its policy, grace,
/// limit, deadline and shutdown signal), each at the user's tokens; shared
/// by `#[nursery]` and `scope!`.
pub(crate) fn settings(args: &Args, handle: &Ident, deadline: Option<&Ident>) -> TokenStream {
    let grace = args.grace.as_ref().map(|(_, value)| {
        let span = value.span();
        quote_spanned! {span=>
            ::nursery::__private::set_grace(#handle, #value);
        }
    });
    let limit = args.limit.as_ref().map(|(_, value)| {
        let span = value.span();
        quote_spanned! {span=>
            #handle.set_limit(#value);
        }
    });
    let timeout = args.timeout.as_ref().map(|(_, value)| {
        let span = value.span();
        match deadline {
            // The deadline began before the nursery: the rest of it.
            Some(deadline) => quote_spanned! {span=>
                #handle.arm_timeout_at(&#deadline);
            },
            None => quote_spanned! {span=>
                #handle.arm_timeout(#value);
            },
        }
    });
    let supervise = args
        .supervise
        .as_ref()
        .map(|(name, handler)| match handler {
            None => quote_spanned! {name.span()=> #handle.supervise(); },
            Some(handler) => {
                let span = handler.span();
                quote_spanned! {span=> #handle.supervise_with(#handler); }
            }
        });
    let cancel_on = args.cancel_on.as_ref().map(|(_, signal)| {
        let span = signal.span();
        quote_spanned! {span=> #handle.cancel_on(#signal); }
    });
    quote! { #supervise #grace #limit #timeout #cancel_on }
}

/// Splits a `#[nursery]` body where its nursery opens — the first
/// statement that uses `spawn!`, `start!` or the handle `n`, at any depth —
/// into the items (hoisted), the statements before (run before the nursery
/// exists: children may borrow what they declare) and the rest (the body).
/// The tail expression always stays in the body.
fn split_at_opening(stmts: &[Stmt], handle: Option<&Ident>) -> (Vec<Stmt>, Vec<Stmt>, Vec<Stmt>) {
    let opening = stmts
        .iter()
        .position(|stmt| opens_nursery(stmt.to_token_stream(), handle))
        .unwrap_or(stmts.len())
        .min(stmts.len().saturating_sub(1));
    let (items, code): (Vec<Stmt>, Vec<Stmt>) = stmts
        .iter()
        .cloned()
        .partition(|stmt| matches!(stmt, Stmt::Item(_)));
    // `opening` counted the items too: find the same statement among `code`.
    let before = stmts[..opening]
        .iter()
        .filter(|stmt| !matches!(stmt, Stmt::Item(_)))
        .count();
    let (prefix, rest) = code.split_at(before);
    (items, prefix.to_vec(), rest.to_vec())
}

/// Whether `tokens` use `spawn!`, `start!` (before or after the rewrite)
/// or the handle.
fn opens_nursery(tokens: TokenStream, handle: Option<&Ident>) -> bool {
    let mut tokens = tokens.into_iter().peekable();
    while let Some(token) = tokens.next() {
        match &token {
            TokenTree::Group(group) if opens_nursery(group.stream(), handle) => return true,
            TokenTree::Ident(ident) => {
                let is_bang =
                    matches!(tokens.peek(), Some(TokenTree::Punct(p)) if p.as_char() == '!');
                if (is_bang && (ident == "spawn" || ident == "start"))
                    || handle.is_some_and(|h| ident == h)
                    || ident == "__nursery_handle"
                {
                    return true;
                }
            }
            _ => {}
        }
    }
    false
}

/// The fn's declared return type, as tokens (`()` when there is none).
fn ret_of(output: &ReturnType) -> TokenStream {
    match output {
        ReturnType::Default => quote!(()),
        ReturnType::Type(_, ty) => ty.to_token_stream(),
    }
}

/// Rewrites `return EXPR` in a `#[nursery]` body (not in the closures,
/// async blocks and items inside it, whose `return`s are their own) into
/// `return returns::<Ret>(EXPR)`.
struct ReturnTyper(TokenStream);

impl VisitMut for ReturnTyper {
    fn visit_expr_mut(&mut self, expr: &mut syn::Expr) {
        match expr {
            syn::Expr::Closure(_) | syn::Expr::Async(_) => {}
            syn::Expr::Return(ret) => {
                if let Some(value) = &mut ret.expr {
                    self.visit_expr_mut(value);
                    let ty = &self.0;
                    let span = value.span();
                    **value = syn::parse_quote_spanned!(span=> ::nursery::__private::returns::<#ty>(#value));
                }
            }
            _ => syn::visit_mut::visit_expr_mut(self, expr),
        }
    }

    fn visit_item_mut(&mut self, _: &mut syn::Item) {}
}
