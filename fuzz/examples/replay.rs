//! Replays inputs through a harness in a plain build, without libFuzzer: for checking a
//! corpus after a change, or debugging a crash with extra output. From `fuzz/`:
//! `cargo run --release --example replay -- <target> <file>...`

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let Some(target) = args.next() else {
        eprintln!("usage: replay <target> <file>...   (targets: {:?})", tq_fuzz::TARGETS);
        std::process::exit(64);
    };
    let mut n = 0;
    for file in args {
        tq_fuzz::run(&target, &std::fs::read(&file)?);
        n += 1;
    }
    println!("{target}: {n} inputs replayed without a finding");
    Ok(())
}
