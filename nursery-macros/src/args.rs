//! The attribute's arguments (`#[nursery(n, local, supervise, limit = 8)]`),
//! also what `scope!` takes before its closure.

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
    /// `cancel_on = EXPR`: a future whose completion cancels the nursery.
    pub(crate) cancel_on: Option<(Ident, Expr)>,
    /// `supervise` (no handler) or `supervise = EXPR` (a handler).
    pub(crate) supervise: Option<(Ident, Option<Expr>)>,
}

/// Every argument, for the messages that list them.
const ALL: &str = "a handle name, `local`, `supervise`, `supervise = handler`, `limit = …`, \
                   `timeout = …`, `grace = …` and `cancel_on = …`";

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
            args.add(arg)?;
        }
        Ok(args)
    }
}

impl Args {
    /// What `scope!` takes before its closure: the same arguments, but no
    /// handle name (the closure names it), each followed by a comma.
    pub(crate) fn parse_before_closure(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut args = Args::default();
        while !(input.peek(Token![|])
            || input.peek(Token![||])
            || input.peek(Token![move])
            || input.peek(Token![async]))
        {
            if input.is_empty() {
                return Err(input.error("`scope!` takes a closure: `scope!(|n| async { … })`"));
            }
            let arg: Arg = input.parse()?;
            if let Arg::Flag(name) = &arg
                && name != "local"
                && name != "supervise"
                && name != "cancel_on"
                && name != "timeout"
                && name != "grace"
                && name != "limit"
            {
                return Err(syn::Error::new_spanned(
                    name,
                    format!(
                        "unknown argument `{name}`: `scope!` takes `local`, `supervise`, `supervise = handler`, \
                         `limit = …`, `timeout = …`, `grace = …` and `cancel_on = …` before its closure, \
                         as in `scope!(supervise, |n| async {{ … }})`"
                    ),
                ));
            }
            args.add(arg)?;
            input.parse::<Token![,]>()?;
        }
        Ok(args)
    }

    fn add(&mut self, arg: Arg) -> syn::Result<()> {
        let args = self;
        {
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
                Arg::Flag(name) if name == "supervise" => {
                    if args.supervise.is_some() {
                        return Err(syn::Error::new_spanned(
                            name,
                            "repeated argument `supervise`: write it once",
                        ));
                    }
                    args.supervise = Some((name, None));
                }
                Arg::Flag(name) if name == "cancel_on" => {
                    return Err(syn::Error::new_spanned(
                        &name,
                        "`cancel_on` needs a future: `cancel_on = tokio::signal::ctrl_c()`",
                    ));
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
                                 the arguments are {ALL}"
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
                Arg::Value(name, value) if name == "supervise" => {
                    if args.supervise.is_some() {
                        return Err(syn::Error::new_spanned(
                            name,
                            "repeated argument `supervise`: write it once",
                        ));
                    }
                    args.supervise = Some((name, Some(value)));
                }
                Arg::Value(name, value)
                    if name == "timeout"
                        || name == "grace"
                        || name == "limit"
                        || name == "cancel_on" =>
                {
                    let slot = if name == "timeout" {
                        &mut args.timeout
                    } else if name == "grace" {
                        &mut args.grace
                    } else if name == "limit" {
                        &mut args.limit
                    } else {
                        &mut args.cancel_on
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
                            "unknown argument `{name} = …`: `#[nursery]` takes {ALL}, \
                             as in `#[nursery(n, timeout = Duration::from_secs(5))]`"
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}
