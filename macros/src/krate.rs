//! Where the runtime crate is: the `crate = path` option, else the name the user's manifest gives
//! `traced-spawn` (renamed or not), read with `proc-macro-crate` as other attribute macros do.

use proc_macro2::{Ident, Span, TokenStream};
use proc_macro_crate::{crate_name, Error, FoundCrate};
use quote::{quote, ToTokens as _};
use syn::Path;

/// The package name of the runtime crate.
const RUNTIME: &str = "traced-spawn";

/// The path of the runtime crate, or the error that says how to name it.
pub(crate) fn path(option: Option<Path>) -> Result<TokenStream, syn::Error> {
    if let Some(path) = option {
        return Ok(path.to_token_stream());
    }
    from_manifest(crate_name(RUNTIME))
}

/// The path for what the manifest says of the runtime crate.
fn from_manifest(found: Result<FoundCrate, Error>) -> Result<TokenStream, syn::Error> {
    match found {
        // The runtime's own doctests and examples: `::traced_spawn` (the crate names itself so).
        Ok(FoundCrate::Itself) => Ok(quote!(::traced_spawn)),
        Ok(FoundCrate::Name(name)) => {
            let name = Ident::new(&name, Span::call_site());
            Ok(quote!(::#name))
        }
        Err(Error::CrateNotFound { path, .. }) => Err(syn::Error::new(
            Span::call_site(),
            format!(
                "#[traced_spawn] needs the `traced-spawn` crate, which {} does not list as a \
                 dependency: add it (`cargo add traced-spawn`), or, where another crate \
                 re-exports it, name that path with `crate = ...`, e.g. \
                 `#[traced_spawn(crate = my_lib::traced_spawn)]`",
                path.display()
            ),
        )),
        // No manifest to read (a build without cargo): the crate's own name.
        Err(_) => Ok(quote!(::traced_spawn)),
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn path(found: Result<FoundCrate, Error>) -> String {
        match from_manifest(found) {
            Ok(path) => path.to_string(),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn the_name_the_manifest_gives() {
        assert_eq!(path(Ok(FoundCrate::Name("ts".into()))), ":: ts");
        assert_eq!(
            path(Ok(FoundCrate::Name("traced_spawn".into()))),
            ":: traced_spawn"
        );
        assert_eq!(path(Ok(FoundCrate::Itself)), ":: traced_spawn");
        assert_eq!(path(Err(Error::CargoManifestDirNotSet)), ":: traced_spawn");
    }

    #[test]
    fn a_missing_dependency_is_one_error_that_names_the_option() {
        let message = path(Err(Error::CrateNotFound {
            crate_name: RUNTIME.into(),
            path: PathBuf::from("/app/Cargo.toml"),
        }));
        assert!(
            message.contains("/app/Cargo.toml does not list as a dependency"),
            "{message}"
        );
        assert!(message.contains("`crate = ...`"), "{message}");
    }

    #[test]
    fn the_option_wins() {
        let option: Path = syn::parse_quote!(my_lib::traced_spawn);
        assert_eq!(
            super::path(Some(option)).unwrap().to_string(),
            "my_lib :: traced_spawn"
        );
    }
}
