//! The attribute's arguments: `#[nursery]`, `#[nursery(n)]`,
//! `#[nursery(local)]`, `#[nursery(n, local)]`.

use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Expr, Ident, Token};

#[derive(Default)]
pub(crate) struct Args {
    /// The name bound to `&Nursery`.
    pub(crate) handle: Option<Ident>,
    /// `local`: children need not be `Send`.
    pub(crate) local: bool,
    /// `timeout = EXPR`: a deadline over the whole nursery.
    pub(crate) timeout: Option<(Ident, Expr)>,
    /// `grace = EXPR`: how long cancelled children may clean up.
    pub(crate) grace: Option<(Ident, Expr)>,
    /// `limit = EXPR`: how many children run at once.
    pub(crate) limit: Option<(Ident, Expr)>,
}

enum Arg {
    Flag(Ident),
    Value(Ident, Expr),
}

impl Parse for Arg {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let name: Ident = input.call(syn::ext::IdentExt::parse_any)?;
        if input.peek(Token![=]) {
            input.parse::<Token![=]>()?;
            Ok(Arg::Value(name, input.parse()?))
        } else {
            Ok(Arg::Flag(name))
        }
    }
}

impl Parse for Args {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut args = Args::default();
        for arg in Punctuated::<Arg, Token![,]>::parse_terminated(input)? {
            match arg {
                Arg::Flag(name) if name == "local" => {
                    if args.local {
                        return Err(syn::Error::new_spanned(
                            name,
                            "repeated argument `local`: write it once",
                        ));
                    }
                    args.local = true;
                }
                Arg::Flag(name) if name == "timeout" || name == "grace" => {
                    return Err(syn::Error::new_spanned(
                        &name,
                        format!("`{name}` needs a value: `{name} = Duration::from_secs(5)`"),
                    ));
                }
                Arg::Flag(name) if name == "limit" => {
                    return Err(syn::Error::new_spanned(
                        &name,
                        "`limit` needs a value: `limit = 8` (how many children run at once)",
                    ));
                }
                Arg::Flag(name) => {
                    if let Some(first) = &args.handle {
                        return Err(syn::Error::new_spanned(
                            &name,
                            format!(
                                "unknown argument `{name}`: the nursery handle is already named `{first}`; \
                                 the arguments are a handle name, `local`, `timeout = …`, `grace = …` and `limit = …`"
                            ),
                        ));
                    }
                    if syn::parse_str::<Ident>(&name.to_string()).is_err() || name == "self" {
                        return Err(syn::Error::new_spanned(
                            &name,
                            format!(
                                "`{name}` cannot name the nursery handle: use an identifier such as `n`"
                            ),
                        ));
                    }
                    args.handle = Some(name);
                }
                Arg::Value(name, value)
                    if name == "timeout" || name == "grace" || name == "limit" =>
                {
                    let slot = if name == "timeout" {
                        &mut args.timeout
                    } else if name == "grace" {
                        &mut args.grace
                    } else {
                        &mut args.limit
                    };
                    if slot.is_some() {
                        return Err(syn::Error::new_spanned(
                            &name,
                            format!("repeated argument `{name}`: write it once"),
                        ));
                    }
                    *slot = Some((name, value));
                }
                Arg::Value(name, _) => {
                    return Err(syn::Error::new_spanned(
                        &name,
                        format!(
                            "unknown argument `{name} = …`: `#[nursery]` takes a handle name, `local`, \
                             `timeout = …`, `grace = …` and `limit = …`, as in `#[nursery(n, timeout = Duration::from_secs(5))]`"
                        ),
                    ));
                }
            }
        }
        Ok(args)
    }
}
