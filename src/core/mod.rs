//! The media core: units and tracks, the Stream fan-out, paths and the PathManager.
//! Protocols convert to and from units here; no protocol talks to another directly.

mod forms;
pub(crate) mod params;
mod path;
mod path_manager;
mod reader;
mod reconfigure;
mod sessions;
mod sink;
mod stream;
mod tasks;
mod track;
mod unit;
pub mod vhost;
mod wall_clock;

pub use forms::{Form, FormKey};
pub use path::{
    kicked, without_credentials, Client, Kick, Path, PathError, PathInfo, Peer, Publisher, Reader,
};
pub use path_manager::PathManager;
pub use reader::{ReadEnd, StreamReader};
pub use reconfigure::{changed_keys, PathsDiff};
pub use sessions::{
    ByteCounter, RtpCounters, Session, SessionDetail, SessionGuard, SessionKind, SessionState,
    Sessions,
};
pub use sink::{Encoder, Sink, SinkEnd};
pub use stream::{Stream, StreamConfig, StreamItem, StreamStats, UnitEntry};
pub use tasks::Tasks;
#[cfg(test)]
pub(crate) use track::fixtures;
pub use track::{Codec, OtherCodec, Track};
pub use unit::{Payload, Unit};
pub use wall_clock::WallClock;
