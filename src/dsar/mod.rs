//! Data subject requests. So far: the access and portability bundle (GDPR Arts. 15 and
//! 20, CCPA right to know); requests with deadlines, erasure and restriction come next.

pub mod access;
