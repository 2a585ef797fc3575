//! What the CLI prints on standard output. A reader that stops reading early
//! (`zhengyin … | head -1`) ends the program quietly, with success, where Rust's `println!`
//! would panic on the broken pipe.

use std::io::Write as _;

/// Writes `text` to standard output and flushes it.
pub fn write(text: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    match out.write_fmt(text).and_then(|()| out.flush()) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => {
            eprintln!("zhengyin: writing the output: {e}");
            std::process::exit(1)
        }
    }
}

/// `println!` for the CLI's output (see the module docs).
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::output::write(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` for the CLI's output (see the module docs).
macro_rules! say_raw {
    ($($arg:tt)*) => {
        $crate::output::write(format_args!($($arg)*))
    };
}
