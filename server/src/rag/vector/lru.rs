//! The in-memory index of many knowledge bases: least recently used evicted first once the bytes
//! go over the limit, and one loader per knowledge base at a time.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use uuid::Uuid;

use super::index::{KbIndex, KbVersion};

/// (tenant, knowledge base).
pub type Key = (Uuid, Uuid);

/// The in-memory index: knowledge bases by key, least recently used evicted first once the
/// bytes go over the limit.
pub struct IndexCache {
    pub max_bytes: usize,
    lru: Mutex<Lru>,
    /// One loader per knowledge base at a time: concurrent searches on a knowledge base whose
    /// version changed wait for the first one's read instead of all reading it.
    loading: Mutex<HashMap<Key, Arc<tokio::sync::Mutex<()>>>>,
}

#[derive(Default)]
pub struct Lru {
    entries: HashMap<Key, (Arc<KbIndex>, u64)>,
    /// Last use → key.
    pub order: BTreeMap<u64, Key>,
    tick: u64,
    pub bytes: usize,
}

impl Lru {
    /// The entry for `key` if it is at `version` (and `dim`), marked as just used.
    pub fn get(&mut self, key: &Key, version: &KbVersion, dim: usize) -> Option<Arc<KbIndex>> {
        let (index, used) = self.entries.get_mut(key)?;
        if index.version != *version || index.dim != dim {
            return None;
        }
        self.tick += 1;
        self.order.remove(used);
        *used = self.tick;
        self.order.insert(self.tick, *key);
        Some(index.clone())
    }

    pub fn remove(&mut self, key: &Key) {
        if let Some((index, used)) = self.entries.remove(key) {
            self.order.remove(&used);
            self.bytes -= index.bytes();
        }
    }

    pub fn remove_where(&mut self, matches: impl Fn(&Key) -> bool) {
        let keys: Vec<Key> = self
            .entries
            .keys()
            .filter(|k| matches(k))
            .copied()
            .collect();
        for key in keys {
            self.remove(&key);
        }
    }

    /// Keeps `index` for `key` (replacing what was there), then evicts the least recently used
    /// entries until the total fits in `max_bytes`. An index larger than the limit on its own
    /// is not kept.
    pub fn insert(&mut self, key: Key, index: Arc<KbIndex>, max_bytes: usize) {
        self.remove(&key);
        let size = index.bytes();
        if size > max_bytes {
            return;
        }
        while self.bytes + size > max_bytes {
            let Some((_, oldest)) = self.order.first_key_value() else {
                break;
            };
            let oldest = *oldest;
            tracing::debug!(tenant_id = %oldest.0, knowledge_base_id = %oldest.1, "vector index evicted");
            self.remove(&oldest);
        }
        self.tick += 1;
        self.order.insert(self.tick, key);
        self.entries.insert(key, (index, self.tick));
        self.bytes += size;
    }
}

impl IndexCache {
    pub fn new(max_bytes: usize) -> Self {
        IndexCache {
            max_bytes,
            lru: Mutex::default(),
            loading: Mutex::default(),
        }
    }

    pub fn lock(&self) -> std::sync::MutexGuard<'_, Lru> {
        self.lru.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get(&self, key: &Key, version: &KbVersion, dim: usize) -> Option<Arc<KbIndex>> {
        self.lock().get(key, version, dim)
    }

    /// The loader lock of `key` (dropped from the map by [`LoadGate`] when nobody uses it).
    pub fn gate(&self, key: Key) -> LoadGate<'_> {
        let mut loading = self.loading.lock().unwrap_or_else(|p| p.into_inner());
        LoadGate {
            cache: self,
            key,
            gate: loading.entry(key).or_default().clone(),
        }
    }
}

pub struct LoadGate<'a> {
    cache: &'a IndexCache,
    key: Key,
    pub gate: Arc<tokio::sync::Mutex<()>>,
}

impl Drop for LoadGate<'_> {
    fn drop(&mut self) {
        let mut loading = self.cache.loading.lock().unwrap_or_else(|p| p.into_inner());
        // Clones are only made under this lock: 2 = the map's and ours, nobody else waits.
        if Arc::strong_count(&self.gate) == 2 {
            loading.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rag::vector::index::tests::index;

    #[test]
    fn the_index_is_bounded_by_bytes_least_recently_used_first() {
        let one = Arc::new(index(3, &[(0, vec![1.0, 0.0, 0.0])]));
        let size = one.bytes();
        let mut lru = Lru::default();
        let key = |n: u128| (Uuid::from_u128(1), Uuid::from_u128(n));
        let v = one.version.clone();
        lru.insert(key(1), one.clone(), size * 2);
        lru.insert(key(2), one.clone(), size * 2);
        assert!(lru.get(&key(1), &v, 3).is_some()); // 1 is now the most recent
        lru.insert(key(3), one.clone(), size * 2);
        assert!(
            lru.get(&key(2), &v, 3).is_none(),
            "2 was the least recently used"
        );
        assert!(lru.get(&key(1), &v, 3).is_some());
        assert!(lru.get(&key(3), &v, 3).is_some());
        assert_eq!(lru.bytes, size * 2);
        // Another version or dimension is a miss.
        assert!(lru.get(&key(1), &(9, 9, None), 3).is_none());
        assert!(lru.get(&key(1), &v, 4).is_none());
        // Too large on its own: not kept, and nothing else is evicted for it.
        lru.insert(key(4), one, size - 1);
        assert!(lru.get(&key(4), &v, 3).is_none());
        lru.remove_where(|k| k.1 == Uuid::from_u128(1));
        assert_eq!(lru.entries.len(), 1);
        assert_eq!(lru.order.len(), 1);
        assert_eq!(lru.bytes, size);
    }
}
