//! Builds the C++ shim over OpenJPH, the HTJ2K encoder (Debian: libopenjph-dev),
//! and finds CharLS, the JPEG-LS decoder (Debian: libcharls-dev).
//!
//! OpenJPH is found through pkg-config (`openjph.pc`). Debian's file names
//! the package but leaves its include and library directories empty, so
//! when pkg-config gives no directories the compiler's own search paths are
//! used, where the distribution's package puts the headers and library.
//! `OPENJPH_INCLUDE_DIR` and `OPENJPH_LIB_DIR` point at another build (the
//! directory holding `openjph/ojph_codestream.h`, and the one holding
//! `libopenjph`).

use std::env;
use std::path::{Path, PathBuf};

const HEADER: &str = "openjph/ojph_codestream.h";

fn main() {
    // CharLS, the JPEG-LS decoder (Debian: libcharls-dev), through its C API.
    if let Err(error) = pkg_config::Config::new()
        .cargo_metadata(true)
        .probe("charls")
    {
        println!(
            "cargo:warning=pkg-config did not find charls ({error}); linking -lcharls from the system paths (apt-get install libcharls-dev)"
        );
    }
    println!("cargo:rerun-if-changed=shim/htj2k.cpp");
    println!("cargo:rerun-if-env-changed=OPENJPH_INCLUDE_DIR");
    println!("cargo:rerun-if-env-changed=OPENJPH_LIB_DIR");
    let mut includes: Vec<PathBuf> = Vec::new();
    let mut link_by_name = true;
    if let Some(dir) = env::var_os("OPENJPH_INCLUDE_DIR") {
        includes.push(dir.into());
    }
    if let Some(dir) = env::var_os("OPENJPH_LIB_DIR") {
        println!(
            "cargo:rustc-link-search=native={}",
            Path::new(&dir).display()
        );
    }
    let probed = pkg_config::Config::new()
        .cargo_metadata(true)
        .env_metadata(true)
        .probe("openjph");
    match &probed {
        Ok(library) => {
            // pkg-config's include directories name the folder holding
            // `openjph/` or `openjph/` itself; either way the parent works.
            for dir in &library.include_paths {
                includes.push(dir.clone());
                if let Some(parent) = dir.parent() {
                    includes.push(parent.to_owned());
                }
            }
            // A complete openjph.pc has already told cargo what to link.
            link_by_name = library.libs.is_empty();
        }
        Err(error) => {
            println!(
                "cargo:warning=pkg-config did not find openjph ({error}); trying the compiler's own paths"
            );
        }
    }
    let standard = ["/usr/include", "/usr/local/include"].map(PathBuf::from);
    let found = includes
        .iter()
        .chain(standard.iter())
        .any(|dir| dir.join(HEADER).exists());
    if !found {
        let tried: Vec<String> = includes
            .iter()
            .chain(standard.iter())
            .map(|dir| dir.display().to_string())
            .collect();
        panic!(
            "HTJ2K encoding needs OpenJPH's library and headers ({HEADER} was looked for in {}). \
             Install them with `apt-get install libopenjph-dev pkg-config` (Debian/Ubuntu), or set \
             OPENJPH_INCLUDE_DIR and OPENJPH_LIB_DIR to a build of OpenJPH, and build again.",
            tried.join(", ")
        );
    }
    let mut build = cc::Build::new();
    build
        .cpp(true)
        .std("c++14")
        .file("shim/htj2k.cpp")
        .warnings(true);
    for dir in &includes {
        build.include(dir);
    }
    build.compile("himcp_htj2k");
    if link_by_name {
        println!("cargo:rustc-link-lib=openjph");
    }
}
