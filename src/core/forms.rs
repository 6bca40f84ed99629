//! Encode-once slots: what a protocol sends for a unit (an FLV tag, RTMP chunks, RTP
//! framed for TCP, WebRTC payloads) is built by the first reader that asks and shared
//! by every other. Each protocol declares its form where it lives; the core holds
//! slots and knows no wire format.

use super::stream::UnitEntry;
use std::any::Any;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// One protocol's encode-once form of a unit.
pub trait Form: 'static {
    /// What readers share: cheap to clone (`Bytes`) or borrowed by them.
    type Out: Send + Sync + 'static;
    /// The form's slot; a `static` next to the form, so each form gets its own.
    fn key() -> &'static FormKey;
    /// Builds the form from the unit; runs at most once per unit.
    fn build(entry: &UnitEntry) -> Self::Out;
}

/// A form's slot number, handed out on first use.
pub struct FormKey(OnceLock<usize>);

/// Slots per unit. Forms are declared in code, one per protocol's wire form; the
/// tests of every protocol touch theirs, so running out shows up in `cargo test`.
const SLOTS: usize = 12;

static NEXT: AtomicUsize = AtomicUsize::new(0);

impl FormKey {
    pub const fn new() -> FormKey {
        FormKey(OnceLock::new())
    }

    fn index(&self) -> usize {
        *self.0.get_or_init(|| {
            let i = NEXT.fetch_add(1, Ordering::Relaxed);
            assert!(i < SLOTS, "more encode-once forms than core::forms::SLOTS");
            i
        })
    }
}

impl Default for FormKey {
    fn default() -> Self {
        FormKey::new()
    }
}

type Slot = OnceLock<Box<dyn Any + Send + Sync>>;

/// A unit's slots, empty until a reader asks for a form.
pub(super) struct Forms([Slot; SLOTS]);

impl Forms {
    pub(super) fn new() -> Forms {
        Forms(std::array::from_fn(|_| OnceLock::new()))
    }

    pub(super) fn get<F: Form>(&self, entry: &UnitEntry) -> &F::Out {
        let slot = &self.0[F::key().index()];
        let any = slot.get_or_init(|| Box::new(F::build(entry)));
        match any.downcast_ref::<F::Out>() {
            Some(out) => out,
            // A slot belongs to one form type (its key is that form's own static).
            None => unreachable!("encode-once slot holds another form's type"),
        }
    }
}

impl std::fmt::Debug for Forms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let built = self.0.iter().filter(|s| s.get().is_some()).count();
        write!(f, "Forms({built} built)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{fixtures, Payload, Stream, StreamConfig, StreamItem, Unit};
    use bytes::Bytes;
    use std::sync::atomic::AtomicU32;
    use std::time::Duration;

    static BUILDS: AtomicU32 = AtomicU32::new(0);

    struct Len;
    impl Form for Len {
        type Out = usize;
        fn key() -> &'static FormKey {
            static K: FormKey = FormKey::new();
            &K
        }
        fn build(entry: &UnitEntry) -> usize {
            BUILDS.fetch_add(1, Ordering::Relaxed);
            entry.unit.payload.len()
        }
    }

    struct Pts;
    impl Form for Pts {
        type Out = Bytes;
        fn key() -> &'static FormKey {
            static K: FormKey = FormKey::new();
            &K
        }
        fn build(entry: &UnitEntry) -> Bytes {
            Bytes::copy_from_slice(&entry.unit.pts.to_be_bytes())
        }
    }

    #[test]
    fn each_form_is_built_once_per_unit_and_kept_apart() {
        let s = Stream::new(
            vec![fixtures::h264()],
            StreamConfig {
                queue_size: 8,
                max_payload: 1400,
                merge: Duration::ZERO,
            },
        );
        s.write(Unit {
            track: 0,
            pts: 7,
            dts: 7,
            keyframe: true,
            payload: Payload::Nalus(vec![Bytes::from_static(&[0x65, 1, 2, 3])]),
        });
        let readers: Vec<_> = (0..3).map(|_| s.subscribe().unwrap()).collect();
        for mut r in readers {
            let mut seen = 0;
            r.drain(|it| {
                if let StreamItem::Unit(e) = it {
                    assert_eq!(*e.form::<Len>(), 4);
                    assert_eq!(&e.form::<Pts>()[..], &7i64.to_be_bytes());
                    assert_eq!(*e.form::<Len>(), 4);
                    seen += 1;
                }
            })
            .unwrap();
            assert_eq!(seen, 1);
        }
        assert_eq!(
            BUILDS.load(Ordering::Relaxed),
            1,
            "built per reader, not once"
        );
        assert_ne!(Len::key().index(), Pts::key().index());
    }
}
