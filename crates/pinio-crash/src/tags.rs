//! A table of operations in flight, indexed by the tag a wrapper gives the
//! inner queue, so that a completion finds what the wrapper knew of its
//! operation (the application's own tag among it) in O(1).

/// Entries keyed by small integers, reused as they free up.
#[derive(Debug)]
pub(crate) struct TagTable<T> {
    slots: Vec<Option<T>>,
    free: Vec<usize>,
}

impl<T> TagTable<T> {
    pub(crate) fn new() -> TagTable<T> {
        TagTable { slots: Vec::new(), free: Vec::new() }
    }

    /// Stores `v`; returns its tag.
    pub(crate) fn insert(&mut self, v: T) -> u64 {
        match self.free.pop() {
            Some(i) => {
                self.slots[i] = Some(v);
                i as u64
            }
            None => {
                self.slots.push(Some(v));
                (self.slots.len() - 1) as u64
            }
        }
    }

    /// Takes the entry of `tag` (`None` for a tag it never gave out).
    pub(crate) fn remove(&mut self, tag: u64) -> Option<T> {
        let i = usize::try_from(tag).ok()?;
        let v = self.slots.get_mut(i)?.take()?;
        self.free.push(i);
        Some(v)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn tags_are_reused_and_unknown_ones_refused() {
        let mut t = super::TagTable::new();
        let (a, b) = (t.insert("a"), t.insert("b"));
        assert_ne!(a, b);
        assert_eq!(t.remove(a), Some("a"));
        assert_eq!(t.remove(a), None);
        assert_eq!(t.remove(99), None);
        assert_eq!(t.insert("c"), a);
    }
}
