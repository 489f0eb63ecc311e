fn main() {
    std::process::exit(webcpm::cli::main());
}
