//! A W3C list header (`baggage`, `tracestate`), read one value at a time over every header of a
//! request: bounded, and kept whole or not at all.

/// The members of a list header: at most `MAX_MEMBERS` of them, over at most `MAX_BYTES` bytes.
#[derive(Debug, Default)]
pub(crate) struct MemberList<'a, const MAX_MEMBERS: usize, const MAX_BYTES: usize> {
    members: Vec<&'a str>,
    bytes: usize,
    rejected: bool,
}

impl<'a, const MAX_MEMBERS: usize, const MAX_BYTES: usize> MemberList<'a, MAX_MEMBERS, MAX_BYTES> {
    /// Adds one header value; its length is checked before anything is parsed. Each non-empty
    /// member, without optional white space, must pass `valid`; the first that does not, or one
    /// over the limits, rejects the whole list.
    pub(crate) fn add(&mut self, value: &'a str, valid: impl Fn(&str) -> bool) {
        if self.rejected {
            return;
        }
        self.bytes = self.bytes.saturating_add(value.len());
        if self.bytes > MAX_BYTES {
            self.reject();
            return;
        }
        for member in value.split(',') {
            let member = member.trim_matches([' ', '\t']);
            if member.is_empty() {
                continue;
            }
            if self.members.len() == MAX_MEMBERS || !valid(member) {
                self.reject();
                return;
            }
            self.members.push(member);
        }
    }

    /// The members, in order; `None` when the list was rejected.
    pub(crate) fn finish(self) -> Option<Vec<&'a str>> {
        (!self.rejected).then_some(self.members)
    }

    fn reject(&mut self) {
        self.rejected = true;
        self.members = Vec::new();
    }
}
