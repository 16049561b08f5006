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
        restricted_at -> Nullable<Timestamp>,
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
        subject_pseudonym -> Nullable<Text>,
        payload_digest -> Text,
        prev_hash -> Text,
        hash -> Text,
    }
}

diesel::table! {
    consent_records (seq) {
        seq -> BigInt,
        id -> Text,
        subject_id -> Text,
        purpose -> Text,
        status -> Text,
        source -> Text,
        purpose_version -> Integer,
        notice_digest -> Nullable<Text>,
        actor_role -> Text,
        actor_id -> Nullable<Text>,
        ip_hash -> Nullable<Text>,
        ip_source -> Nullable<Text>,
        user_agent -> Nullable<Text>,
        recorded_at -> Timestamp,
        expires_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    consent_states (subject_id, purpose) {
        subject_id -> Text,
        purpose -> Text,
        status -> Text,
        source -> Text,
        record_id -> Text,
        record_seq -> BigInt,
        purpose_version -> Integer,
        notice_digest -> Nullable<Text>,
        updated_at -> Timestamp,
        expires_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    preferences (subject_id) {
        subject_id -> Text,
        document -> Text,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    profile_attributes (subject_id, key) {
        subject_id -> Text,
        key -> Text,
        value -> Text,
        category -> Text,
        source -> Text,
        updated_at -> Timestamp,
    }
}

diesel::joinable!(consent_records -> subjects (subject_id));
diesel::joinable!(consent_states -> subjects (subject_id));
diesel::joinable!(preferences -> subjects (subject_id));
diesel::joinable!(profile_attributes -> subjects (subject_id));

diesel::allow_tables_to_appear_in_same_query!(
    subjects,
    audit_events,
    consent_records,
    consent_states,
    preferences,
    profile_attributes,
);

diesel::table! {
    decision_log (id) {
        id -> BigInt,
        decided_at -> Timestamp,
        subject_pseudonym -> Text,
        purpose -> Text,
        channel -> Nullable<Text>,
        decision -> Text,
        reason -> Text,
        basis -> Text,
        jurisdiction -> Text,
    }
}

diesel::table! {
    audit_checkpoints (seq) {
        seq -> BigInt,
        hash -> Text,
        kid -> Text,
        signature -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    dsar_requests (id) {
        id -> Text,
        subject_id -> Text,
        kind -> Text,
        status -> Text,
        details -> Text,
        jurisdiction -> Text,
        received_at -> Timestamp,
        due_at -> Timestamp,
        extended -> Bool,
        extension_reason -> Nullable<Text>,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    dsar_steps (id) {
        id -> BigInt,
        request_id -> Text,
        status -> Text,
        actor_role -> Text,
        actor_id -> Nullable<Text>,
        note -> Nullable<Text>,
        at -> Timestamp,
    }
}

diesel::table! {
    erasures (pseudonym) {
        pseudonym -> Text,
        erased_at -> Timestamp,
    }
}

diesel::table! {
    customer_events (id) {
        id -> BigInt,
        subject_id -> Text,
        name -> Text,
        properties -> Text,
        occurred_at -> Timestamp,
        received_at -> Timestamp,
    }
}

diesel::table! {
    surveys (id) {
        id -> Text,
        key -> Text,
        name -> Text,
        kind -> Text,
        status -> Text,
        purpose -> Text,
        priority -> Integer,
        version -> Integer,
        definition -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    survey_versions (survey_id, version) {
        survey_id -> Text,
        version -> Integer,
        definition -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    survey_displays (id) {
        id -> Text,
        survey_id -> Text,
        version -> Integer,
        subject_id -> Text,
        event -> Nullable<Text>,
        shown_at -> Timestamp,
        dismissed_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    survey_responses (id) {
        id -> Text,
        survey_id -> Text,
        version -> Integer,
        subject_id -> Text,
        display_id -> Nullable<Text>,
        answers -> Text,
        finished -> Bool,
        started_at -> Timestamp,
        updated_at -> Timestamp,
        finished_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    survey_answers (response_id, question_id, ordinal) {
        response_id -> Text,
        question_id -> Text,
        ordinal -> Integer,
        survey_id -> Text,
        version -> Integer,
        subject_id -> Text,
        number_value -> Nullable<Integer>,
        text_value -> Nullable<Text>,
        free_text -> Nullable<Text>,
        answered_at -> Timestamp,
        answered_day -> Text,
        breakdown_value -> Nullable<Text>,
    }
}

diesel::table! {
    survey_followups (id) {
        id -> Text,
        survey_id -> Text,
        response_id -> Text,
        subject_id -> Text,
        score -> Integer,
        status -> Text,
        opened_at -> Timestamp,
        closed_at -> Nullable<Timestamp>,
        closed_by -> Nullable<Text>,
        resolution -> Nullable<Text>,
    }
}

diesel::table! {
    portal_links (token_hash) {
        token_hash -> Text,
        kind -> Text,
        subject_id -> Nullable<Text>,
        survey_id -> Nullable<Text>,
        console_sub -> Nullable<Text>,
        console_role -> Nullable<Text>,
        locale -> Nullable<Text>,
        return_url -> Nullable<Text>,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    portal_sessions (id_hash) {
        id_hash -> Text,
        kind -> Text,
        subject_id -> Nullable<Text>,
        survey_id -> Nullable<Text>,
        console_sub -> Nullable<Text>,
        console_role -> Nullable<Text>,
        locale -> Nullable<Text>,
        return_url -> Nullable<Text>,
        display_id -> Nullable<Text>,
        created_at -> Timestamp,
        last_seen_at -> Timestamp,
        expires_at -> Timestamp,
        ended_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    contacts (id) {
        id -> Text,
        subject_id -> Text,
        channel -> Text,
        purpose -> Text,
        sent_at -> Timestamp,
        recorded_at -> Timestamp,
        idempotency_key -> Nullable<Text>,
    }
}

diesel::table! {
    subject_identifiers (kind, value) {
        kind -> Text,
        value -> Text,
        subject_id -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    subject_merges (from_id) {
        from_id -> Text,
        into_id -> Text,
        merged_at -> Timestamp,
    }
}

diesel::table! {
    outbox_messages (seq) {
        seq -> BigInt,
        id -> Text,
        event_type -> Text,
        subject_id -> Nullable<Text>,
        subject_pseudonym -> Nullable<Text>,
        purpose -> Nullable<Text>,
        payload -> Text,
        occurred_at -> Timestamp,
        fanned_out -> Bool,
        published -> Bool,
    }
}

diesel::table! {
    webhook_endpoints (id) {
        id -> Text,
        url -> Text,
        description -> Text,
        event_types -> Text,
        purpose -> Nullable<Text>,
        data_category -> Nullable<Text>,
        recipient -> Nullable<Text>,
        secret -> Text,
        previous_secret -> Nullable<Text>,
        previous_secret_until -> Nullable<Timestamp>,
        disabled_at -> Nullable<Timestamp>,
        disabled_reason -> Nullable<Text>,
        consecutive_failures -> Integer,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    webhook_deliveries (id) {
        id -> Text,
        endpoint_id -> Text,
        message_seq -> BigInt,
        subject_key -> Text,
        status -> Text,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        lease_until -> Nullable<Timestamp>,
        created_at -> Timestamp,
        delivered_at -> Nullable<Timestamp>,
        last_status -> Nullable<Integer>,
        last_error -> Nullable<Text>,
    }
}

diesel::table! {
    webhook_attempts (id) {
        id -> Text,
        delivery_id -> Text,
        attempted_at -> Timestamp,
        status_code -> Nullable<Integer>,
        error -> Nullable<Text>,
        duration_ms -> Integer,
    }
}

diesel::table! {
    dsar_recipient_notices (request_id, recipient) {
        request_id -> Text,
        recipient -> Text,
        created_at -> Timestamp,
        told_at -> Nullable<Timestamp>,
        acknowledged_at -> Nullable<Timestamp>,
        acknowledged_by -> Nullable<Text>,
    }
}

diesel::joinable!(webhook_deliveries -> outbox_messages (message_seq));
diesel::joinable!(webhook_deliveries -> webhook_endpoints (endpoint_id));
diesel::allow_tables_to_appear_in_same_query!(
    outbox_messages,
    webhook_deliveries,
    webhook_endpoints
);

diesel::table! {
    consent_expiries (record_id) {
        record_id -> Text,
        announced_at -> Timestamp,
    }
}

diesel::allow_tables_to_appear_in_same_query!(consent_states, consent_expiries);
