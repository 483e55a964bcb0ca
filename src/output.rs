//! Printing that can never panic. `println!`/`eprintln!` panic when the stream is a broken
//! pipe (Rust ignores SIGPIPE, so the write fails with EPIPE) — inside the hook that turned a
//! closed stderr into a skipped just-in-time guard. Every line the tool prints goes through
//! these macros: they escape control characters (see [`crate::escape`]), write, and drop
//! the error, as a tool inside apt must.

/// `println!` that ignores write errors.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use ::std::io::Write as _;
        let text = ::std::format!($($arg)*);
        let _ = ::std::writeln!(::std::io::stdout(), "{}", $crate::escape::for_terminal(&text));
    }};
}

/// `print!` that ignores write errors.
macro_rules! out {
    ($($arg:tt)*) => {{
        use ::std::io::Write as _;
        let text = ::std::format!($($arg)*);
        let _ = ::std::write!(::std::io::stdout(), "{}", $crate::escape::for_terminal(&text));
    }};
}

/// `eprintln!` that ignores write errors.
macro_rules! errln {
    ($($arg:tt)*) => {{
        use ::std::io::Write as _;
        let text = ::std::format!($($arg)*);
        let _ = ::std::writeln!(::std::io::stderr(), "{}", $crate::escape::for_terminal(&text));
    }};
}
