// Shared by both backends: only types that SQLite and PostgreSQL both map the same way
// (text ids, UTC timestamps without zone, BigInt, Integer, Bool).

diesel::table! {
    subjects (id) {
        id -> Text,
        region -> Text,
        locale -> Nullable<Text>,
        birth_year -> Nullable<Integer>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    audit_events (seq) {
        seq -> BigInt,
        occurred_at -> Timestamp,
        actor_role -> Text,
        actor_id -> Nullable<Text>,
        action -> Text,
        subject_id -> Nullable<Text>,
        payload -> Text,
    }
}

diesel::allow_tables_to_appear_in_same_query!(subjects, audit_events);
