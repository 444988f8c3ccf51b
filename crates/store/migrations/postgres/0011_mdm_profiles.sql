-- Step 6: the profile and app library, static device groups, assignments, and the managed view
-- of what each enrollment should hold and does hold (convergence).

-- Configuration profiles: typed ones keep their settings (JSON) and the rendered profile;
-- uploaded ones (kind custom) keep the file as given (base64 when it is binary).
CREATE TABLE mdm_profiles (
    id TEXT PRIMARY KEY,
    -- The profile's PayloadIdentifier: kept across versions, so a new version replaces the old.
    identifier TEXT NOT NULL,
    name TEXT NOT NULL,
    -- passcode, wifi, vpn, restrictions, exchange, custom.
    kind TEXT NOT NULL,
    settings TEXT,
    payload TEXT NOT NULL,
    -- 1 when payload is base64 of a binary file (CMS-signed, or a binary plist), 0 when it is
    -- the XML plist's text.
    is_binary BIGINT NOT NULL,
    -- The profile's PayloadUUID: new with every version; ProfileList reports it.
    payload_uuid TEXT NOT NULL,
    -- The PayloadType of each payload, space-separated.
    payload_types TEXT NOT NULL,
    version BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    archived_at BIGINT
);
CREATE UNIQUE INDEX mdm_profiles_identifier_key ON mdm_profiles (identifier);
CREATE INDEX mdm_profiles_by_name ON mdm_profiles (name, id);

-- Apps: from the App Store (store_id) or in-house (manifest_url); bundle_id removes them and
-- matches InstalledApplicationList.
CREATE TABLE mdm_apps (
    id TEXT PRIMARY KEY,
    -- store, enterprise.
    kind TEXT NOT NULL,
    store_id BIGINT,
    manifest_url TEXT,
    bundle_id TEXT NOT NULL,
    name TEXT NOT NULL,
    -- 1: remove the app when the device leaves MDM (ManagementFlags 1).
    remove_on_unenroll BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    archived_at BIGINT
);
CREATE UNIQUE INDEX mdm_apps_bundle_key ON mdm_apps (bundle_id) WHERE archived_at IS NULL;
CREATE INDEX mdm_apps_by_name ON mdm_apps (name, id);

-- Named static groups of inventory devices, central or of one agency.
CREATE TABLE mdm_groups (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    agency_code TEXT REFERENCES agencies (code),
    description TEXT,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX mdm_groups_name_key ON mdm_groups (name);
CREATE INDEX mdm_groups_by_agency ON mdm_groups (agency_code, name);
CREATE TABLE mdm_group_members (
    group_id TEXT NOT NULL REFERENCES mdm_groups (id),
    device_id TEXT NOT NULL REFERENCES devices (id),
    added_at BIGINT NOT NULL,
    PRIMARY KEY (group_id, device_id)
);
-- Convergence joins an enrollment's device to the groups holding it.
CREATE INDEX mdm_group_members_by_device ON mdm_group_members (device_id, group_id);

-- What goes where: a profile or an app, to an agency, a device type or a group.
CREATE TABLE mdm_assignments (
    id TEXT PRIMARY KEY,
    -- profile, app.
    item_kind TEXT NOT NULL,
    item_id TEXT NOT NULL,
    -- agency (an agency code), device_type (smartphone, tablet ...), group (a group id).
    target_kind TEXT NOT NULL,
    target TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX mdm_assignments_key ON mdm_assignments (item_kind, item_id, target_kind, target);
-- Convergence looks assignments up by target.
CREATE INDEX mdm_assignments_by_target ON mdm_assignments (target_kind, target, item_kind);

-- The managed view per enrollment and item. status: installing (InstallProfile outstanding),
-- installed, removing (RemoveProfile outstanding), removed, failed (the last command's error;
-- last_action says which), missing (installed, but absent from the device's last list: the next
-- convergence installs it again). version: the profile version installed or being installed
-- (0: an older copy of unknown version).
CREATE TABLE mdm_profile_states (
    enrollment_id TEXT NOT NULL,
    profile_id TEXT NOT NULL REFERENCES mdm_profiles (id),
    status TEXT NOT NULL,
    last_action TEXT NOT NULL,
    version BIGINT NOT NULL,
    command_id TEXT,
    error TEXT,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (enrollment_id, profile_id)
);
CREATE INDEX mdm_profile_states_by_profile ON mdm_profile_states (profile_id, enrollment_id);
CREATE INDEX mdm_profile_states_by_command ON mdm_profile_states (command_id) WHERE command_id IS NOT NULL;
CREATE TABLE mdm_app_states (
    enrollment_id TEXT NOT NULL,
    app_id TEXT NOT NULL REFERENCES mdm_apps (id),
    status TEXT NOT NULL,
    last_action TEXT NOT NULL,
    version BIGINT NOT NULL,
    command_id TEXT,
    error TEXT,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (enrollment_id, app_id)
);
CREATE INDEX mdm_app_states_by_app ON mdm_app_states (app_id, enrollment_id);
CREATE INDEX mdm_app_states_by_command ON mdm_app_states (command_id) WHERE command_id IS NOT NULL;
