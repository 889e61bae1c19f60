//! Builds the C++ shim over OpenJPH, the HTJ2K encoder (Debian: libopenjph-dev).

use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=shim/htj2k.cpp");
    let headers = ["/usr/include/openjph", "/usr/local/include/openjph"];
    let Some(include) = headers
        .iter()
        .find(|dir| Path::new(dir).join("ojph_codestream.h").exists())
    else {
        panic!(
            "HTJ2K encoding needs the OpenJPH library and headers: install them with \
             `apt-get install libopenjph-dev` (Debian/Ubuntu) and build again"
        );
    };
    cc::Build::new()
        .cpp(true)
        .std("c++14")
        .include(
            Path::new(include)
                .parent()
                .expect("the include folder has a parent"),
        )
        .file("shim/htj2k.cpp")
        .warnings(true)
        .compile("himcp_htj2k");
    println!("cargo:rustc-link-lib=openjph");
}
