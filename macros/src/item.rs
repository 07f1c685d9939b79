//! The annotated item, parsed as far as the rewrite needs: attributes, visibility and signature.
//! The body stays tokens, so a body with a syntax error gets rustc's own error and nothing else,
//! while the rewritten signature keeps the call sites type-checking.

use proc_macro2::{Span, TokenStream};
use quote::{quote, ToTokens as _};
use syn::parse::{Parse, ParseStream};
use syn::token::Brace;
use syn::{Attribute, Item, Signature, Visibility};

/// A function whose body is kept as tokens.
pub(crate) struct TracedFn {
    /// Outer attributes.
    pub(crate) attrs: Vec<Attribute>,
    pub(crate) vis: Visibility,
    pub(crate) sig: Signature,
    pub(crate) body: Body,
}

pub(crate) struct Body {
    /// The user's braces: their spans keep item lints (`dead_code`) on the user's code.
    pub(crate) brace: Brace,
    /// `#![...]` at the start of the body.
    pub(crate) inner_attrs: Vec<Attribute>,
    /// Everything after the inner attributes, unparsed.
    pub(crate) statements: TokenStream,
}

impl Parse for TracedFn {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let attrs = input.call(Attribute::parse_outer)?;
        let vis = input.parse()?;
        let sig = input.parse()?;
        let content;
        let brace = syn::braced!(content in input);
        let inner_attrs = content.call(Attribute::parse_inner)?;
        let statements = content.parse()?;
        Ok(TracedFn {
            attrs,
            vis,
            sig,
            body: Body {
                brace,
                inner_attrs,
                statements,
            },
        })
    }
}

/// Parses the item, or says why it cannot be rewritten.
pub(crate) fn parse(item: TokenStream) -> syn::Result<TracedFn> {
    if let Ok(function) = syn::parse2::<TracedFn>(item.clone()) {
        return Ok(function);
    }
    if let Ok(declaration) = syn::parse2::<syn::TraitItemFn>(item.clone()) {
        if declaration.default.is_none() {
            let sig = &declaration.sig;
            return Err(syn::Error::new_spanned(
                quote!(#sig),
                "#[traced_spawn] needs a function body: put it on the method of the impl, \
                 not on the trait's declaration",
            ));
        }
    }
    let head = match syn::parse2::<Item>(item.clone()) {
        Ok(item) => item_head(&item),
        Err(_) => item,
    };
    let message = "#[traced_spawn] can only be applied to functions";
    Err(if head.is_empty() {
        syn::Error::new(Span::call_site(), message)
    } else {
        syn::Error::new_spanned(head, message)
    })
}

/// The tokens that name an item (`struct Foo`, `impl Trait for Type`), for a short error span.
fn item_head(item: &Item) -> TokenStream {
    match item {
        Item::Const(item) => {
            let (keyword, ident) = (&item.const_token, &item.ident);
            quote!(#keyword #ident)
        }
        Item::Enum(item) => {
            let (keyword, ident) = (&item.enum_token, &item.ident);
            quote!(#keyword #ident)
        }
        Item::Impl(item) => {
            let (keyword, self_ty) = (&item.impl_token, &item.self_ty);
            quote!(#keyword #self_ty)
        }
        Item::Mod(item) => {
            let (keyword, ident) = (&item.mod_token, &item.ident);
            quote!(#keyword #ident)
        }
        Item::Static(item) => {
            let (keyword, ident) = (&item.static_token, &item.ident);
            quote!(#keyword #ident)
        }
        Item::Struct(item) => {
            let (keyword, ident) = (&item.struct_token, &item.ident);
            quote!(#keyword #ident)
        }
        Item::Trait(item) => {
            let (keyword, ident) = (&item.trait_token, &item.ident);
            quote!(#keyword #ident)
        }
        Item::Type(item) => {
            let (keyword, ident) = (&item.type_token, &item.ident);
            quote!(#keyword #ident)
        }
        Item::Union(item) => {
            let (keyword, ident) = (&item.union_token, &item.ident);
            quote!(#keyword #ident)
        }
        Item::Use(item) => item.use_token.to_token_stream(),
        Item::Macro(item) => item.mac.path.to_token_stream(),
        other => other.to_token_stream(),
    }
}
