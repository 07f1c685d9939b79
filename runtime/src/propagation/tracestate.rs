//! The W3C Trace Context `tracestate` header, passed through: vendor entries that belong to the
//! `traceparent` they came with.
//!
//! Read as W3C Trace Context and its working group's validation suite read it. The `tracestate`
//! header lines of a request are one list, combined in order (RFC 9110 field order, as if joined
//! with `,`). The list is kept whole or not at all: at most [`MAX_MEMBERS`] list-members over at
//! most [`MAX_BYTES`] bytes, each member `key=value` with the W3C key and value grammar. Empty and
//! whitespace-only members (`a=1,,b=2`, an empty header line) are allowed and left out. A key that
//! repeats is passed on as it came: W3C lets a vendor keep or drop the duplicates of keys it did
//! not write, and this crate writes none.

/// Most list-members kept: the W3C limit (a 33rd makes the list invalid).
pub(crate) const MAX_MEMBERS: usize = 32;
/// Most bytes read over every `tracestate` header of one request; a longer list is not read and
/// not passed on. W3C asks vendors to pass on at least 512.
pub(crate) const MAX_BYTES: usize = 8192;
/// Longest key: `(lcalpha / DIGIT) 0*255(keychar)`.
const MAX_KEY_LEN: usize = 256;
/// Longest value: `0*255(chr) nblk-chr`.
const MAX_VALUE_LEN: usize = 256;

use super::list::MemberList;

/// The `tracestate` headers of one request, read one value at a time.
#[derive(Debug, Default)]
pub(crate) struct Reader<'a>(MemberList<'a, MAX_MEMBERS, MAX_BYTES>);

impl<'a> Reader<'a> {
    /// Adds one header value; the first invalid or oversized value makes the whole list invalid.
    pub(crate) fn add(&mut self, value: &'a str) {
        self.0.add(value, valid_member);
    }

    /// The list, joined with `,`; `None` when there was none or it was invalid.
    pub(crate) fn finish(self) -> Option<Box<str>> {
        let members = self.0.finish().filter(|members| !members.is_empty())?;
        Some(members.join(",").into_boxed_str())
    }
}

/// `key "=" value`, already stripped of the optional white space around it. The key ends at the
/// first `=` (a key has none); the value may not hold another.
fn valid_member(member: &str) -> bool {
    member
        .split_once('=')
        .is_some_and(|(key, value)| valid_key(key) && valid_value(value))
}

/// `keychar = lcalpha / DIGIT / "_" / "-" / "*" / "/" / "@"`.
fn key_char(byte: u8) -> bool {
    matches!(byte, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'*' | b'/' | b'@')
}

/// `key = (lcalpha / DIGIT) 0*255(keychar)`: up to 256 characters, starting with a lower-case
/// letter or a digit. `@` may appear anywhere after the first character, any number of times
/// (`tenant@system`, `foo@`, `foo@@bar`).
fn valid_key(key: &str) -> bool {
    let key = key.as_bytes();
    (1..=MAX_KEY_LEN).contains(&key.len())
        && matches!(key[0], b'a'..=b'z' | b'0'..=b'9')
        && key.iter().all(|&byte| key_char(byte))
}

/// `value = 0*255(chr) nblk-chr`: printable ASCII without `,` and `=`, not ending with a space
/// (leading spaces are part of the value).
fn valid_value(value: &str) -> bool {
    let value = value.as_bytes();
    (1..=MAX_VALUE_LEN).contains(&value.len())
        && value
            .iter()
            .all(|&byte| (0x20..=0x7e).contains(&byte) && byte != b',' && byte != b'=')
        && value.last() != Some(&b' ')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(lines: &[&str]) -> Option<Box<str>> {
        let mut reader = Reader::default();
        for line in lines {
            reader.add(line);
        }
        reader.finish()
    }

    #[test]
    fn the_key_grammar_is_the_w3c_one() {
        let longest = "k".repeat(MAX_KEY_LEN);
        for key in [
            "a",
            "7",
            "0abc",
            "a_b-c*d/e",
            "foo@",
            "foo@@bar",
            "foo@bar@baz",
            "tenant@vendor",
            "1tenant@vendor",
            longest.as_str(),
        ] {
            assert!(valid_key(key), "{key}");
        }
        let over = "k".repeat(MAX_KEY_LEN + 1);
        for key in [
            "",
            "@",
            "@foo",
            "_a",
            "-a",
            "*a",
            "/a",
            "A",
            "fOo",
            "foo bar",
            "foo.bar",
            "foo=",
            "é",
            over.as_str(),
        ] {
            assert!(!valid_key(key), "{key}");
        }
    }

    #[test]
    fn the_value_grammar_is_the_w3c_one() {
        let longest = "v".repeat(MAX_VALUE_LEN);
        for value in ["x", " x", "  x y", "!~<>", longest.as_str()] {
            assert!(valid_value(value), "{value:?}");
        }
        let over = "v".repeat(MAX_VALUE_LEN + 1);
        for value in [
            "",
            " ",
            "x ",
            "a,b",
            "a=b",
            "x\t",
            "x\u{7f}",
            "é",
            over.as_str(),
        ] {
            assert!(!valid_value(value), "{value:?}");
        }
    }

    #[test]
    fn lines_combine_in_order_and_duplicates_stay() {
        assert_eq!(
            read(&["foo=1 ,\tbar= 2", "", " , ", "foo=3,,baz=4"]).as_deref(),
            Some("foo=1,bar= 2,foo=3,baz=4")
        );
        assert_eq!(read(&["", " \t "]), None);
        assert_eq!(read(&[]), None);
        // One invalid member anywhere drops every line.
        assert_eq!(read(&["foo=1", "bar=2,@baz=3"]), None);
        assert_eq!(read(&["foo=1", "bar"]), None);
    }

    #[test]
    fn the_limits_hold_over_every_line() {
        let members: Vec<String> = (0..MAX_MEMBERS).map(|i| format!("k{i}=v")).collect();
        let (first, second) = members.split_at(20);
        let (first, second) = (first.join(","), second.join(","));
        assert_eq!(
            read(&[&first, &second]).as_deref(),
            Some(members.join(",").as_str())
        );
        assert_eq!(read(&[&first, &second, "one=more"]), None);
        // Bytes count over every line, white space included: 32 lines of 256 bytes are read, one
        // more byte is not.
        let member = format!("a={}", "v".repeat(254));
        let lines = vec![member.as_str(); MAX_BYTES / member.len()];
        assert_eq!(lines.len(), MAX_MEMBERS);
        assert!(read(&lines).is_some());
        let mut over = lines.clone();
        over.push(" ");
        assert_eq!(read(&over), None);
    }
}
