//! deb822 control paragraphs (the dpkg status file, `DEBIAN/control`), wrapping `debcontrol`.
//! The only module that knows that crate.

/// One paragraph: fields in file order; names compare case-insensitively.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Paragraph {
    pub fields: Vec<(String, String)>,
    /// 1-based line of the paragraph's first field in its file.
    pub line: usize,
}

impl Paragraph {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A paragraph that could not be parsed; the others are still returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub line: usize,
    pub message: String,
}

/// Splits `text` into paragraphs and parses each; a garbled one becomes a [`Problem`].
pub fn parse_paragraphs(text: &str) -> (Vec<Paragraph>, Vec<Problem>) {
    let _ = text;
    todo!("dpkg helper")
}
