//! What the attribute is applied to, checked: an `async fn` with a body.

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::{GenericArgument, Item, ItemFn, PathArguments, ReturnType, Type};

/// How the fn's declared return type shapes the nursery.
pub(crate) enum Shape {
    /// `-> Result<T, Errors<E>>`: the body's errors flatten into the nursery's.
    Errors,
    /// `-> Result<T, R>` (or an alias such as `anyhow::Result<T>`): children
    /// fail with `R`, the fn returns `R::from(errors)`.
    Result,
    /// Anything else (`()` included): children cannot fail.
    Value,
}

pub(crate) fn parse_fn(item: TokenStream) -> syn::Result<ItemFn> {
    let item: Item = syn::parse2(item)?;
    let Item::Fn(func) = item else {
        return Err(syn::Error::new_spanned(
            &item,
            "`#[nursery]` can only be applied to an `async fn`",
        ));
    };
    if func.sig.asyncness.is_none()
        && func
            .sig
            .to_token_stream()
            .to_string()
            .contains("'async_trait")
    {
        return Err(syn::Error::new_spanned(
            &func.sig.ident,
            "`#[nursery]` cannot see this method's body: `#[async_trait]` already rewrote it into a boxed future; \
             write the trait with a native `async fn` (Rust 1.75+; no `#[async_trait]`), \
             or have the method call a `#[nursery] async fn` that does the work",
        ));
    }
    if let Some(twice) = func.attrs.iter().find(|attr| {
        let path = attr.path();
        path.is_ident("nursery")
            || (path.segments.len() == 2
                && path.segments[0].ident == "nursery"
                && path.segments[1].ident == "nursery")
    }) {
        return Err(syn::Error::new_spanned(
            twice,
            "`#[nursery]` is written twice: remove this one (its arguments go in one attribute, \
             as in `#[nursery(n, supervise)]`)",
        ));
    }
    if func.sig.asyncness.is_none() {
        let hint = if func
            .block
            .to_token_stream()
            .to_string()
            .contains("block_on")
        {
            "; this fn looks like the output of `#[tokio::main]` or `#[tokio::test]`: \
             put `#[nursery]` above that attribute"
        } else {
            ": write `async fn`"
        };
        return Err(syn::Error::new_spanned(
            func.sig.fn_token,
            format!("`#[nursery]` requires an `async fn`{hint}"),
        ));
    }
    if let Some(constness) = func.sig.constness {
        return Err(syn::Error::new_spanned(
            constness,
            "`#[nursery]` cannot be applied to a `const fn`",
        ));
    }
    Ok(func)
}

pub(crate) fn shape(output: &ReturnType) -> syn::Result<Shape> {
    let ty = match output {
        ReturnType::Default => return Ok(Shape::Value),
        ReturnType::Type(_, ty) => ty,
    };
    reject_impl_trait(ty)?;
    let Some(result) = last_segment(ty) else {
        return Ok(Shape::Value);
    };
    if result.ident != "Result" {
        return Ok(Shape::Value);
    }
    let PathArguments::AngleBracketed(args) = &result.arguments else {
        return Ok(Shape::Result);
    };
    let types: Vec<&Type> = args
        .args
        .iter()
        .filter_map(|a| match a {
            GenericArgument::Type(t) => Some(t),
            _ => None,
        })
        .collect();
    match types.as_slice() {
        [_, err] if last_segment(err).is_some_and(|s| s.ident == "Errors") => Ok(Shape::Errors),
        _ => Ok(Shape::Result),
    }
}

/// Handles cannot leave their nursery: a `Task` or `Nursery` in the return
/// type, or a `'static` one among the arguments (where a child's handle
/// would be stored), is reported at that type — rustc would report a
/// temporary dropped while borrowed, on the attribute.
pub(crate) fn check_handles_stay(sig: &syn::Signature) -> syn::Result<()> {
    const WHY: &str = "task and nursery handles cannot leave their nursery (it ends with this fn)";
    if let ReturnType::Type(_, ty) = &sig.output
        && let Some(name) = mentions_handle(ty.to_token_stream(), false)
    {
        return Err(syn::Error::new_spanned(
            ty,
            format!(
                "{WHY}: return the child's value instead of its `{name}` (`task.await` in the body)"
            ),
        ));
    }
    for input in &sig.inputs {
        if let syn::FnArg::Typed(arg) = input
            && let Some(name) = mentions_handle(arg.ty.to_token_stream(), true)
        {
            return Err(syn::Error::new_spanned(
                &arg.ty,
                format!(
                    "{WHY}: a `{name}<'static, …>` can never hold one of its handles; \
                     hand results out by returning them from the fn"
                ),
            ));
        }
    }
    Ok(())
}

/// `Task<'…` or `Nursery<'…` (`<'static` if `only_static`) anywhere in
/// `tokens`.
fn mentions_handle(tokens: TokenStream, only_static: bool) -> Option<&'static str> {
    let tokens: Vec<proc_macro2::TokenTree> = tokens.into_iter().collect();
    for (i, tt) in tokens.iter().enumerate() {
        match tt {
            proc_macro2::TokenTree::Group(g) => {
                if let Some(name) = mentions_handle(g.stream(), only_static) {
                    return Some(name);
                }
            }
            proc_macro2::TokenTree::Ident(ident) if ident == "Task" || ident == "Nursery" => {
                // Ours take a lifetime first (`Task<'_, T>`), which a user's
                // own `Task<T>` rarely does.
                let opens = matches!(tokens.get(i + 1), Some(proc_macro2::TokenTree::Punct(p)) if p.as_char() == '<')
                    && matches!(tokens.get(i + 2), Some(proc_macro2::TokenTree::Punct(p)) if p.as_char() == '\'');
                let is_static = matches!(tokens.get(i + 3), Some(proc_macro2::TokenTree::Ident(l)) if l == "static");
                if opens && (!only_static || is_static) {
                    return Some(if ident == "Task" { "Task" } else { "Nursery" });
                }
            }
            _ => {}
        }
    }
    None
}

/// A `Send` nursery's error type must be `Send`: `-> Result<_, Box<dyn
/// Error>>` without `+ Send + Sync` is reported at that type, rather than
/// as a `Send` error on the first child that can fail.
pub(crate) fn check_send_error(output: &ReturnType) -> syn::Result<()> {
    let ReturnType::Type(_, ty) = output else {
        return Ok(());
    };
    let Some(PathArguments::AngleBracketed(args)) = last_segment(ty)
        .filter(|s| s.ident == "Result")
        .map(|s| &s.arguments)
    else {
        return Ok(());
    };
    let Some(GenericArgument::Type(err)) = args.args.iter().nth(1) else {
        return Ok(());
    };
    let Some(boxed) = last_segment(err).filter(|s| s.ident == "Box") else {
        return Ok(());
    };
    let PathArguments::AngleBracketed(inner) = &boxed.arguments else {
        return Ok(());
    };
    let Some(GenericArgument::Type(Type::TraitObject(object))) = inner.args.first() else {
        return Ok(());
    };
    let has = |name: &str| {
        object.bounds.iter().any(|b| match b {
            syn::TypeParamBound::Trait(t) => {
                t.path.segments.last().is_some_and(|s| s.ident == name)
            }
            _ => false,
        })
    };
    if has("Send") {
        return Ok(());
    }
    Err(syn::Error::new_spanned(
        object,
        "a `#[nursery]` fn's error type goes between threads with its children: \
         write `Box<dyn Error + Send + Sync>` here, or use `#[nursery(local)]` to keep the nursery on one thread",
    ))
}

fn last_segment(ty: &Type) -> Option<&syn::PathSegment> {
    match ty {
        Type::Path(p) if p.qself.is_none() => p.path.segments.last(),
        Type::Group(g) => last_segment(&g.elem),
        Type::Paren(p) => last_segment(&p.elem),
        _ => None,
    }
}

fn reject_impl_trait(ty: &Type) -> syn::Result<()> {
    let mut found = None;
    find_impl_trait(ty.to_token_stream(), &mut found);
    match found {
        Some(span) => Err(syn::Error::new(
            span,
            "`#[nursery]` needs a nameable return type: replace `impl Trait` with the concrete type",
        )),
        None => Ok(()),
    }
}

fn find_impl_trait(tokens: TokenStream, found: &mut Option<proc_macro2::Span>) {
    for tt in tokens {
        match tt {
            proc_macro2::TokenTree::Ident(i) if i == "impl" && found.is_none() => {
                *found = Some(i.span())
            }
            proc_macro2::TokenTree::Group(g) => find_impl_trait(g.stream(), found),
            _ => {}
        }
    }
}
