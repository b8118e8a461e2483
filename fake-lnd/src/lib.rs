//! FakeLnd: a test double of lnd's REST API (work in progress on this branch).
