//! Generates the Tauri context (config, icons, capabilities). The manifest lives at the
//! repository root, so capabilities are found under `src-tauri/capabilities/`.

fn main() {
    // tauri-build does not watch a custom capabilities path by itself.
    println!("cargo:rerun-if-changed=src-tauri/capabilities");
    let attributes =
        tauri_build::Attributes::new().capabilities_path_pattern("src-tauri/capabilities/**/*");
    if let Err(error) = tauri_build::try_build(attributes) {
        // Cargo shows build-script output on failure; fail the build with the reason.
        println!("cargo:warning=tauri build failed: {error:#}");
        std::process::exit(1);
    }
}
