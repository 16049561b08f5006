fn main() {
    // Migrations are embedded in the binary; rebuild when they change.
    println!("cargo:rerun-if-changed=migrations");
}
