//! Finds the places where a type borrows data that may not outlive the call.
//!
//! Lifetimes that belong to a function signature inside the type (`fn(&str)`, `Fn(&str)`,
//! `for<'a> ...`) are higher-ranked: they borrow nothing from the caller, so they are skipped.
//! Elided lifetimes hidden in a path (`Formatter` for `Formatter<'_>`) cannot be seen here; the
//! `'static` check of the runtime catches those at the parameter.

use syn::visit::{self, Visit};
use syn::{
    BoundLifetimes, GenericParam, Lifetime, ParenthesizedGenericArguments, TraitBound, Type,
    TypeBareFn, TypeReference,
};

/// A part of a type that borrows for a lifetime other than `'static`.
pub(crate) enum Borrow<'a> {
    /// `&T`, `&'a T`, `&'_ mut T`: the whole reference.
    Reference(&'a TypeReference),
    /// `'a` or `'_` in `Cow<'a, str>`, `Foo<'_>`, `dyn Trait + 'a`.
    Lifetime(&'a Lifetime),
}

pub(crate) fn find(ty: &Type) -> Vec<Borrow<'_>> {
    let mut finder = Finder::default();
    finder.visit_type(ty);
    finder.found
}

#[derive(Default)]
struct Finder<'a> {
    found: Vec<Borrow<'a>>,
    /// Lifetimes introduced by an enclosing `for<...>`.
    bound: Vec<&'a Lifetime>,
    /// Depth inside `fn(..)` or `Fn(..)` argument and return types, where elision is higher-ranked.
    in_fn_signature: usize,
}

impl<'a> Finder<'a> {
    fn is_borrow(&self, lifetime: &Lifetime) -> bool {
        if lifetime.ident == "static" {
            return false;
        }
        if lifetime.ident == "_" {
            return self.in_fn_signature == 0;
        }
        !self.bound.iter().any(|bound| bound.ident == lifetime.ident)
    }

    /// Visits with the lifetimes of `for<...>` bound.
    fn binding(&mut self, lifetimes: Option<&'a BoundLifetimes>, visit: impl FnOnce(&mut Self)) {
        let before = self.bound.len();
        for param in lifetimes.into_iter().flat_map(|bound| &bound.lifetimes) {
            if let GenericParam::Lifetime(param) = param {
                self.bound.push(&param.lifetime);
            }
        }
        visit(self);
        self.bound.truncate(before);
    }

    /// Visits inside a function signature, where elided lifetimes are higher-ranked.
    fn in_signature(&mut self, visit: impl FnOnce(&mut Self)) {
        self.in_fn_signature += 1;
        visit(self);
        self.in_fn_signature -= 1;
    }
}

impl<'a> Visit<'a> for Finder<'a> {
    fn visit_type_reference(&mut self, reference: &'a TypeReference) {
        let borrows = match &reference.lifetime {
            Some(lifetime) => self.is_borrow(lifetime),
            None => self.in_fn_signature == 0,
        };
        if borrows {
            // One error per reference: what it points to is moot until it is owned.
            self.found.push(Borrow::Reference(reference));
        } else {
            self.visit_type(&reference.elem);
        }
    }

    fn visit_lifetime(&mut self, lifetime: &'a Lifetime) {
        if self.is_borrow(lifetime) {
            self.found.push(Borrow::Lifetime(lifetime));
        }
    }

    /// The declarations of `for<'a>` are not uses.
    fn visit_bound_lifetimes(&mut self, _: &'a BoundLifetimes) {}

    fn visit_type_bare_fn(&mut self, function: &'a TypeBareFn) {
        self.binding(function.lifetimes.as_ref(), |finder| {
            finder.in_signature(|finder| visit::visit_type_bare_fn(finder, function));
        });
    }

    fn visit_parenthesized_generic_arguments(
        &mut self,
        arguments: &'a ParenthesizedGenericArguments,
    ) {
        self.in_signature(|finder| visit::visit_parenthesized_generic_arguments(finder, arguments));
    }

    fn visit_trait_bound(&mut self, bound: &'a TraitBound) {
        self.binding(bound.lifetimes.as_ref(), |finder| {
            visit::visit_trait_bound(finder, bound);
        });
    }

    /// Array lengths and other expressions borrow nothing from the caller.
    fn visit_expr(&mut self, _: &'a syn::Expr) {}
}
