//! Typed Graph and identity platform payloads, shaped after the v1.0 CSDL.
//!
//! Two rules keep feeds flowing when Microsoft's data surprises us: enums are open (unknown
//! values become `Other(String)`), and optional properties are lenient (a wrongly typed value
//! becomes `None`). Only entity keys and the properties the CSDL marks non-nullable are strict,
//! and their errors name the field (with line and column when parsed from text). Unknown
//! properties are ignored.

mod entities;
mod enums;
mod lenient;
mod wire;

pub use entities::{
    AppliedConditionalAccessPolicy, AuthenticationAppDeviceDetails, DeviceDetail, DirectoryObject,
    GeoCoordinates, RiskDetection, RiskyUser, SignIn, SignInLocation, SignInStatus, User,
};
pub use enums::{
    ActivityType, AppliedConditionalAccessPolicyResult, ConditionalAccessStatus, RiskDetail,
    RiskDetectionTimingType, RiskEventType, RiskLevel, RiskState, TokenIssuerType,
};
pub use wire::{
    BooleanValue, GraphErrorBody, GraphErrorDetail, InnerError, Page, TokenErrorResponse,
    TokenResponse, UserIdsRequest,
};
