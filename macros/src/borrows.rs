//! Finds the places where a type borrows data that may not outlive the call.
//!
//! Lifetimes that belong to a function signature inside the type (`fn(&str)`, `Fn(&str)`,
//! `for<'a> ...`) are higher-ranked: they borrow nothing from the caller, so they are skipped.
//! Elided lifetimes hidden in a path (`Formatter` for `Formatter<'_>`) cannot be seen here; the
//! `'static` check of the runtime catches those at the parameter.

use syn::punctuated::Punctuated;
use syn::{
    BoundLifetimes, GenericArgument, GenericParam, Lifetime, Path, PathArguments, ReturnType, Type,
    TypeParamBound, TypeReference,
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
    finder.ty(ty);
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
        let name = lifetime.ident.to_string();
        if name == "static" {
            return false;
        }
        if name == "_" {
            return self.in_fn_signature == 0;
        }
        !self.bound.iter().any(|bound| bound.ident == lifetime.ident)
    }

    fn ty(&mut self, ty: &'a Type) {
        match ty {
            Type::Reference(reference) => {
                let borrows = match &reference.lifetime {
                    Some(lifetime) => self.is_borrow(lifetime),
                    None => self.in_fn_signature == 0,
                };
                if borrows {
                    // One error per reference: what it points to is moot until it is owned.
                    self.found.push(Borrow::Reference(reference));
                } else {
                    self.ty(&reference.elem);
                }
            }
            Type::Path(path) => {
                if let Some(qself) = &path.qself {
                    self.ty(&qself.ty);
                }
                self.path(&path.path);
            }
            Type::Array(array) => self.ty(&array.elem),
            Type::Slice(slice) => self.ty(&slice.elem),
            Type::Ptr(pointer) => self.ty(&pointer.elem),
            Type::Paren(paren) => self.ty(&paren.elem),
            Type::Group(group) => self.ty(&group.elem),
            Type::Tuple(tuple) => {
                for elem in &tuple.elems {
                    self.ty(elem);
                }
            }
            Type::BareFn(function) => {
                let introduced = self.bind(function.lifetimes.as_ref());
                self.in_fn_signature += 1;
                for input in &function.inputs {
                    self.ty(&input.ty);
                }
                self.output(&function.output);
                self.in_fn_signature -= 1;
                self.unbind(introduced);
            }
            Type::ImplTrait(impl_trait) => self.bounds(&impl_trait.bounds),
            Type::TraitObject(object) => self.bounds(&object.bounds),
            _ => {}
        }
    }

    fn output(&mut self, output: &'a ReturnType) {
        if let ReturnType::Type(_, ty) = output {
            self.ty(ty);
        }
    }

    fn lifetime(&mut self, lifetime: &'a Lifetime) {
        if self.is_borrow(lifetime) {
            self.found.push(Borrow::Lifetime(lifetime));
        }
    }

    fn path(&mut self, path: &'a Path) {
        for segment in &path.segments {
            match &segment.arguments {
                PathArguments::None => {}
                PathArguments::AngleBracketed(arguments) => {
                    for argument in &arguments.args {
                        self.generic_argument(argument);
                    }
                }
                PathArguments::Parenthesized(arguments) => {
                    self.in_fn_signature += 1;
                    for input in &arguments.inputs {
                        self.ty(input);
                    }
                    self.output(&arguments.output);
                    self.in_fn_signature -= 1;
                }
            }
        }
    }

    fn generic_argument(&mut self, argument: &'a GenericArgument) {
        match argument {
            GenericArgument::Lifetime(lifetime) => self.lifetime(lifetime),
            GenericArgument::Type(ty) => self.ty(ty),
            GenericArgument::AssocType(assoc) => self.ty(&assoc.ty),
            GenericArgument::Constraint(constraint) => self.bounds(&constraint.bounds),
            _ => {}
        }
    }

    fn bounds<P>(&mut self, bounds: &'a Punctuated<TypeParamBound, P>) {
        for bound in bounds {
            match bound {
                TypeParamBound::Lifetime(lifetime) => self.lifetime(lifetime),
                TypeParamBound::Trait(trait_bound) => {
                    let introduced = self.bind(trait_bound.lifetimes.as_ref());
                    self.path(&trait_bound.path);
                    self.unbind(introduced);
                }
                _ => {}
            }
        }
    }

    fn bind(&mut self, lifetimes: Option<&'a BoundLifetimes>) -> usize {
        let before = self.bound.len();
        for param in lifetimes.into_iter().flat_map(|bound| &bound.lifetimes) {
            if let GenericParam::Lifetime(param) = param {
                self.bound.push(&param.lifetime);
            }
        }
        self.bound.len() - before
    }

    fn unbind(&mut self, introduced: usize) {
        let keep = self.bound.len().saturating_sub(introduced);
        self.bound.truncate(keep);
    }
}
