//! CLIP's image tower, frozen: configuration, the vision transformer in burn,
//! weight loading from both checkpoint layouts, CLIP's preprocessing, and the
//! [`Encoder`] that ties them to an identity.

pub mod activation;
pub mod config;
pub mod encoder;
pub mod load;
pub mod model;
pub mod preprocess;

pub use config::{Activation, Preset, VisionConfig};
pub use encoder::{DEFAULT_MODEL, DEFAULT_REVISION, Encoder};
pub use load::{Layout, load_weights};
pub use model::ClipVisionModelWithProjection;
pub use preprocess::Preprocessor;
