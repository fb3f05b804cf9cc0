//! Stamps the build time into the binary: a wall clock earlier than the build cannot be right,
//! which is how a Pi without a real-time clock is caught saying 1970.
fn main() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let stamp = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(now);
    println!("cargo:rustc-env=FIELDLINK_BUILD_UNIX={stamp}");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
}
