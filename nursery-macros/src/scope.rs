//! `scope!(|n| async { … })`: a nursery as an expression.

use proc_macro2::{Ident, Span, TokenStream};
use quote::quote;
use syn::parse::{Parse, ParseStream};
use syn::visit_mut::VisitMut;
use syn::{Expr, Pat, Token};

use crate::args::Args;
use crate::spawn::handle_ident;
use crate::visit::SpawnRewriter;

struct ScopeInput {
    args: Args,
    handle: Ident,
    body: Expr,
}

impl Parse for ScopeInput {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let args = Args::parse_before_closure(input)?;
        let closure: syn::ExprClosure = input.parse().map_err(|e| {
            syn::Error::new(
                e.span(),
                "`scope!` takes a closure: `scope!(|n| async { … })`",
            )
        })?;
        if !input.is_empty() {
            input.parse::<Token![,]>()?;
        }
        if !input.is_empty() {
            return Err(input.error("unexpected tokens after the closure of `scope!`"));
        }
        if let Some(asyncness) = closure.asyncness {
            return Err(syn::Error::new_spanned(
                asyncness,
                "write `scope!(|n| async { … })`: the closure returns an async block",
            ));
        }
        let handle = match closure.inputs.iter().collect::<Vec<_>>().as_slice() {
            [Pat::Ident(p)] if p.subpat.is_none() && p.by_ref.is_none() => p.ident.clone(),
            [Pat::Wild(w)] => Ident::new("_", w.underscore_token.span),
            _ => {
                return Err(syn::Error::new_spanned(
                    &closure.inputs,
                    "`scope!` takes a closure of one argument, the nursery handle: `scope!(|n| async { … })`",
                ));
            }
        };
        Ok(ScopeInput {
            args,
            handle,
            body: *closure.body,
        })
    }
}

pub(crate) fn expand(input: TokenStream) -> TokenStream {
    let ScopeInput {
        args,
        handle,
        mut body,
    } = match syn::parse2(input) {
        Ok(input) => input,
        Err(error) => return error.to_compile_error(),
    };
    SpawnRewriter::new(Some(handle.clone()).filter(|h| h != "_")).visit_expr_mut(&mut body);
    let scope = Ident::new("__nursery_scope", Span::mixed_site());
    let inner = handle_ident();
    let body_ident = Ident::new("__nursery_body", Span::mixed_site());
    let cancel = Ident::new("__nursery_cancel", Span::mixed_site());
    let settings = crate::expand::settings(&args, &inner, None);
    let kind = if args.local {
        quote!(::nursery::__private::Local)
    } else {
        quote!(::nursery::__private::Sendable)
    };
    let bind = if handle == "_" {
        quote!()
    } else {
        quote! {
            #[allow(unused_variables)]
            let #handle = #inner;
        }
    };
    quote! {
        async {
            let #scope = ::core::pin::pin!(::nursery::__private::Nursery::<_, #kind>::new());
            let #scope = #scope.into_ref();
            let #inner = ::nursery::__private::handle(#scope);
            #bind
            #settings
            let #body_ident = #body;
            let #cancel = ::nursery::__private::cancel_value_for(&#body_ident);
            ::nursery::__private::run_errors(#scope, #body_ident, move || {
                #[allow(unused_imports)]
                use ::nursery::__private::NoCancelValue as _;
                #cancel.__nursery_cancel_value()
            })
            .await
        }
    }
}
