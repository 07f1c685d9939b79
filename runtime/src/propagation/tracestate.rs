//! The W3C Trace Context `tracestate` header, passed through: vendor entries that belong to the
//! `traceparent` they came with.
//!
//! Every `tracestate` header is read (they form one list); the list is kept whole or not at all:
//! at most [`MAX_MEMBERS`] list-members and [`MAX_BYTES`] bytes, each member `key=value` with the
//! W3C key and value grammar, no key twice. Empty members (`a=1,,b=2`) are allowed and dropped.

/// Most list-members kept: the W3C limit.
pub(crate) const MAX_MEMBERS: usize = 32;
/// Most bytes read over every `tracestate` header of one request.
pub(crate) const MAX_BYTES: usize = 8192;

use super::list::MemberList;

/// The `tracestate` headers of one request, read one value at a time.
#[derive(Debug, Default)]
pub(crate) struct Reader<'a>(MemberList<'a, MAX_MEMBERS, MAX_BYTES>);

impl<'a> Reader<'a> {
    /// Adds one header value; the first invalid or oversized value makes the whole list invalid.
    pub(crate) fn add(&mut self, value: &'a str) {
        self.0.add(value, |kept, member| {
            let Some((key, value)) = member.split_once('=') else {
                return false;
            };
            let duplicate = kept
                .iter()
                .any(|kept| kept.split_once('=').is_some_and(|(k, _)| k == key));
            valid_key(key) && valid_value(value) && !duplicate
        });
    }

    /// The list, joined with `,`; `None` when there was none or it was invalid.
    pub(crate) fn finish(self) -> Option<Box<str>> {
        let members = self.0.finish().filter(|members| !members.is_empty())?;
        Some(members.join(",").into_boxed_str())
    }
}

fn key_char(byte: u8) -> bool {
    matches!(byte, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'*' | b'/')
}

/// `simple-key` (`lcalpha 0*255(keychar)`) or `tenant@system` (`(lcalpha / DIGIT) 0*240(keychar)`
/// `@` `lcalpha 0*13(keychar)`).
fn valid_key(key: &str) -> bool {
    let key = key.as_bytes();
    match key.iter().position(|&byte| byte == b'@') {
        None => {
            (1..=256).contains(&key.len())
                && key[0].is_ascii_lowercase()
                && key.iter().all(|&byte| key_char(byte))
        }
        Some(at) => {
            let (tenant, system) = (&key[..at], &key[at + 1..]);
            (1..=241).contains(&tenant.len())
                && (tenant[0].is_ascii_lowercase() || tenant[0].is_ascii_digit())
                && tenant.iter().all(|&byte| key_char(byte))
                && (1..=14).contains(&system.len())
                && system[0].is_ascii_lowercase()
                && system.iter().all(|&byte| key_char(byte))
        }
    }
}

/// `0*255(chr) nblk-chr`: printable ASCII without `,` and `=`, not ending with a space.
fn valid_value(value: &str) -> bool {
    let value = value.as_bytes();
    (1..=256).contains(&value.len())
        && value
            .iter()
            .all(|&byte| (0x20..=0x7e).contains(&byte) && byte != b',' && byte != b'=')
        && value.last() != Some(&b' ')
}
