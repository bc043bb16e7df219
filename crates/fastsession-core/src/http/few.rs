//! A list that is almost always empty or of one item, kept without a heap allocation until it
//! has two: a request's `Cookie` headers, its sessions, its `Set-Cookie` lines.

#[derive(Debug, Clone, Default)]
pub(crate) enum Few<T> {
    #[default]
    None,
    One(T),
    Many(Vec<T>),
}

impl<T> Few<T> {
    pub(crate) fn as_slice(&self) -> &[T] {
        match self {
            Few::None => &[],
            Few::One(item) => std::slice::from_ref(item),
            Few::Many(items) => items,
        }
    }

    pub(crate) fn as_mut_slice(&mut self) -> &mut [T] {
        match self {
            Few::None => &mut [],
            Few::One(item) => std::slice::from_mut(item),
            Few::Many(items) => items,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.as_slice().is_empty()
    }

    /// Inserts `item` at `index` (at most the length), shifting the later items.
    pub(crate) fn insert(&mut self, index: usize, item: T) {
        *self = match std::mem::take(self) {
            Few::None => Few::One(item),
            Few::One(first) => {
                let mut items = Vec::with_capacity(4);
                items.push(first);
                items.insert(index, item);
                Few::Many(items)
            }
            Few::Many(mut items) => {
                items.insert(index, item);
                Few::Many(items)
            }
        };
    }
}

impl<T> FromIterator<T> for Few<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        let mut iter = iter.into_iter();
        match (iter.next(), iter.next()) {
            (None, _) => Few::None,
            (Some(one), None) => Few::One(one),
            (Some(first), Some(second)) => {
                let mut items = vec![first, second];
                items.extend(iter);
                Few::Many(items)
            }
        }
    }
}

impl<T> IntoIterator for Few<T> {
    type Item = T;
    type IntoIter = std::iter::Chain<std::option::IntoIter<T>, std::vec::IntoIter<T>>;

    fn into_iter(self) -> Self::IntoIter {
        let (one, many) = match self {
            Few::None => (None, Vec::new()),
            Few::One(item) => (Some(item), Vec::new()),
            Few::Many(items) => (None, items),
        };
        one.into_iter().chain(many)
    }
}

#[cfg(test)]
mod tests {
    use super::Few;

    #[test]
    fn keeps_order_through_every_shape() {
        let mut few = Few::None;
        assert!(few.is_empty());
        few.insert(0, 2);
        assert!(matches!(few, Few::One(2)));
        few.insert(0, 1);
        few.insert(2, 4);
        few.insert(2, 3);
        assert_eq!(few.as_slice(), [1, 2, 3, 4]);
        few.as_mut_slice()[0] = 0;
        assert_eq!(few.clone().into_iter().collect::<Vec<_>>(), [0, 2, 3, 4]);
        assert!(matches!([7].into_iter().collect::<Few<_>>(), Few::One(7)));
        assert_eq!((0..3).collect::<Few<_>>().as_slice(), [0, 1, 2]);
        assert!(std::iter::empty::<u8>().collect::<Few<_>>().is_empty());
    }
}
