//! Export jobs: instances read with GetDICOMInstance and written to a folder,
//! S3, a STOW-RS endpoint or a DICOM node, optionally de-identified.

pub mod destination;
pub mod dimse;
pub mod jobs;
pub mod run;

pub use destination::Destination;
pub use jobs::{ExportJob, ExportJobs, JobStatus};
pub use run::Runner;
