//! The W3C `baggage` header: reading it (bounded, all or nothing) and writing it (percent-encoded,
//! within the limits).
//!
//! Limits, the W3C minimums every receiver must accept, applied both ways: at most
//! [`MAX_MEMBERS`] list-members and [`MAX_BYTES`] bytes over every `baggage` header of a request.
//! Incoming baggage beyond them, or with a member that does not follow the W3C grammar, is
//! ignored whole: it is never partly used.

/// Most list-members read or written.
pub(crate) const MAX_MEMBERS: usize = 64;
/// Most bytes read (over every `baggage` header of a request) or written.
pub(crate) const MAX_BYTES: usize = 8192;
/// Prefix of the entries of Sentry's dynamic sampling context.
pub(crate) const SENTRY_PREFIX: &str = "sentry-";

use super::list::MemberList;

/// The `baggage` headers of one request, read one value at a time.
#[derive(Debug, Default)]
pub(crate) struct Reader<'a>(MemberList<'a, MAX_MEMBERS, MAX_BYTES>);

/// What the `baggage` headers of a request held.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Incoming<'a> {
    /// No `baggage` header, or only empty ones.
    Absent,
    /// Every list-member, trimmed, in order.
    Valid(Vec<&'a str>),
    /// Oversized, too many members, or a member outside the W3C grammar: nothing is used.
    Rejected,
}

impl<'a> Reader<'a> {
    /// Adds one header value. The length is checked before anything is parsed.
    pub(crate) fn add(&mut self, value: &'a str) {
        self.0.add(value, valid_member);
    }

    pub(crate) fn finish(self) -> Incoming<'a> {
        match self.0.finish() {
            None => Incoming::Rejected,
            Some(members) if members.is_empty() => Incoming::Absent,
            Some(members) => Incoming::Valid(members),
        }
    }
}

fn trim_ows(text: &str) -> &str {
    text.trim_matches([' ', '\t'])
}

/// RFC 7230 `tchar`.
fn token_char(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

/// W3C `baggage-octet`: printable ASCII without space, `"`, `,`, `;` and `\`.
fn baggage_octet(byte: u8) -> bool {
    matches!(byte, 0x21 | 0x23..=0x2b | 0x2d..=0x3a | 0x3c..=0x5b | 0x5d..=0x7e)
}

fn valid_key(key: &str) -> bool {
    !key.is_empty() && key.bytes().all(token_char)
}

fn valid_value(value: &str) -> bool {
    value.bytes().all(baggage_octet)
}

/// `key OWS "=" OWS value *( OWS ";" OWS property )`, property = `key OWS "=" OWS value` or
/// `key OWS`.
fn valid_member(member: &str) -> bool {
    let mut parts = member.split(';');
    let Some((key, value)) = parts.next().and_then(|pair| pair.split_once('=')) else {
        return false;
    };
    if !valid_key(trim_ows(key)) || !valid_value(trim_ows(value)) {
        return false;
    }
    // An empty property (`a=1;`, `a=1;;p`) is tolerated, as other SDKs write it.
    parts.all(|property| match property.split_once('=') {
        Some((key, value)) => valid_key(trim_ows(key)) && valid_value(trim_ows(value)),
        None => trim_ows(property).is_empty() || valid_key(trim_ows(property)),
    })
}

/// The key and the (still encoded) value of a member the reader accepted, properties left out.
pub(crate) fn key_value(member: &str) -> (&str, &str) {
    let pair = member.split(';').next().unwrap_or(member);
    let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
    (trim_ows(key), trim_ows(value))
}

/// The entry name of a Sentry member (`org_id` for `sentry-org_id=1`), `None` for third-party.
pub(crate) fn sentry_key(member: &str) -> Option<&str> {
    key_value(member).0.strip_prefix(SENTRY_PREFIX)
}

/// Percent-decodes a value; `None` for a broken escape or bytes that are not UTF-8.
pub(crate) fn decode(value: &str) -> Option<String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let text = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(text, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Percent-encodes `value` so that it is made of `baggage-octet`s only (`%` itself is encoded).
pub(crate) fn encode(value: &str, out: &mut String) {
    for byte in value.bytes() {
        if baggage_octet(byte) && byte != b'%' {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(b"0123456789ABCDEF"[usize::from(byte >> 4)]));
            out.push(char::from(b"0123456789ABCDEF"[usize::from(byte & 0x0f)]));
        }
    }
}

/// An outgoing `baggage` value, kept within [`MAX_MEMBERS`] and [`MAX_BYTES`]: a member that
/// would exceed them is left out whole.
#[derive(Debug, Default)]
pub(crate) struct Writer {
    value: String,
    members: usize,
}

impl Writer {
    /// Adds a member already in wire form (a forwarded one).
    pub(crate) fn push_raw(&mut self, member: &str) -> bool {
        let separator = usize::from(self.members > 0);
        if self.members == MAX_MEMBERS || self.value.len() + separator + member.len() > MAX_BYTES {
            return false;
        }
        if separator == 1 {
            self.value.push(',');
        }
        self.value.push_str(member);
        self.members += 1;
        true
    }

    /// Adds `sentry-<name>=<value>`, percent-encoding the value.
    pub(crate) fn push_sentry(&mut self, name: &str, value: &str) -> bool {
        let mut member = String::with_capacity(SENTRY_PREFIX.len() + name.len() + 1 + value.len());
        member.push_str(SENTRY_PREFIX);
        member.push_str(name);
        member.push('=');
        encode(value, &mut member);
        self.push_raw(&member)
    }

    /// The value, `None` when no member was written.
    pub(crate) fn finish(self) -> Option<String> {
        (self.members > 0).then_some(self.value)
    }
}
