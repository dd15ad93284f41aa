%% @doc zotonic_host: Zotonic's core tables (the columns of Zotonic 1.0's z_install that
%% mod_backup and the host models use, with the same names, types and constraints) and a small
%% base datamodel: the admin (id 1), the categories with their `$category' hierarchy, and the
%% predicates.
%% @end

-module(zotonic_host_schema).

-export([install/1]).

-include_lib("zotonic_core/include/zotonic.hrl").

%% {Id, Name, Parent}; ids below 1000 are the datamodel's, content starts at 1000.
-spec categories() -> [{pos_integer(), binary(), binary() | undefined}].
categories() ->
    [
        {100, <<"category">>, <<"meta">>},
        {101, <<"other">>, undefined},
        {102, <<"predicate">>, <<"meta">>},
        {103, <<"meta">>, undefined},
        {104, <<"person">>, undefined},
        {105, <<"text">>, undefined},
        {106, <<"article">>, <<"text">>},
        {107, <<"media">>, undefined},
        {108, <<"image">>, <<"media">>},
        {109, <<"document">>, <<"media">>}
    ].

-spec predicates() -> [{pos_integer(), binary()}].
predicates() ->
    [
        {300, <<"about">>},
        {301, <<"author">>},
        {302, <<"depiction">>},
        {303, <<"relation">>},
        {304, <<"subject">>},
        {305, <<"haspart">>}
    ].

%% @doc Create the tables and the base data in the site's (empty) database.
-spec install(z:context()) -> ok.
install(Context) ->
    lists:foreach(fun(Sql) -> {ok, [], []} = z_db:squery(Sql, Context) end, tables()),
    ok = datamodel(Context).

tables() ->
    [
        "CREATE TABLE config (
            id serial NOT NULL,
            module character varying(80) NOT NULL DEFAULT 'zotonic',
            key character varying(80) NOT NULL DEFAULT '',
            value text NOT NULL DEFAULT '',
            props bytea,
            created timestamp with time zone NOT NULL DEFAULT now(),
            modified timestamp with time zone NOT NULL DEFAULT now(),
            CONSTRAINT config_pkey PRIMARY KEY (id),
            CONSTRAINT config_module_key_key UNIQUE (module, key))",
        "CREATE TABLE module (
            id serial NOT NULL,
            name character varying(80) NOT NULL DEFAULT '',
            uri character varying(2048) NOT NULL DEFAULT '',
            is_active boolean NOT NULL DEFAULT false,
            created timestamp with time zone NOT NULL DEFAULT now(),
            modified timestamp with time zone NOT NULL DEFAULT now(),
            schema_version int NULL,
            CONSTRAINT module_pkey PRIMARY KEY (id),
            CONSTRAINT module_name_key UNIQUE (name))",
        "CREATE TABLE rsc (
            id serial NOT NULL,
            uri character varying(2048),
            name character varying(80),
            is_authoritative boolean NOT NULL DEFAULT true,
            is_published boolean NOT NULL DEFAULT false,
            is_featured boolean NOT NULL DEFAULT false,
            is_protected boolean NOT NULL DEFAULT false,
            is_dependent boolean NOT NULL DEFAULT false,
            is_unfindable boolean NOT NULL DEFAULT false,
            publication_start timestamp with time zone,
            publication_end timestamp with time zone NOT NULL DEFAULT '9999-06-01 00:00:00'::timestamp with time zone,
            content_group_id int,
            creator_id int,
            modifier_id int,
            version int NOT NULL DEFAULT 1,
            category_id int NOT NULL,
            visible_for int NOT NULL DEFAULT 0,
            language character varying(16)[],
            slug character varying(80) NOT NULL DEFAULT '',
            props bytea,
            created timestamp with time zone NOT NULL DEFAULT now(),
            modified timestamp with time zone NOT NULL DEFAULT now(),
            pivot_category_nr int,
            pivot_title character varying(100),
            CONSTRAINT rsc_pkey PRIMARY KEY (id),
            CONSTRAINT rsc_uri_key UNIQUE (uri),
            CONSTRAINT rsc_name_key UNIQUE (name),
            CONSTRAINT fk_rsc_content_group_id FOREIGN KEY (content_group_id) REFERENCES rsc (id) ON UPDATE CASCADE ON DELETE SET NULL,
            CONSTRAINT fk_rsc_creator_id FOREIGN KEY (creator_id) REFERENCES rsc (id) ON UPDATE CASCADE ON DELETE SET NULL,
            CONSTRAINT fk_rsc_modifier_id FOREIGN KEY (modifier_id) REFERENCES rsc (id) ON UPDATE CASCADE ON DELETE SET NULL,
            CONSTRAINT fk_rsc_category_id FOREIGN KEY (category_id) REFERENCES rsc (id) ON UPDATE CASCADE ON DELETE RESTRICT)",
        "CREATE TABLE edge (
            id serial NOT NULL,
            subject_id int NOT NULL,
            predicate_id int NOT NULL,
            object_id int NOT NULL,
            seq int NOT NULL DEFAULT 1000000,
            creator_id int,
            created timestamp with time zone NOT NULL DEFAULT now(),
            CONSTRAINT edge_pkey PRIMARY KEY (id),
            CONSTRAINT edge_ops_key UNIQUE (object_id, predicate_id, subject_id),
            CONSTRAINT edge_spo_key UNIQUE (subject_id, predicate_id, object_id),
            CONSTRAINT fk_edge_subject_id FOREIGN KEY (subject_id) REFERENCES rsc (id) ON UPDATE CASCADE ON DELETE CASCADE,
            CONSTRAINT fk_edge_object_id FOREIGN KEY (object_id) REFERENCES rsc (id) ON UPDATE CASCADE ON DELETE CASCADE,
            CONSTRAINT fk_edge_predicate_id FOREIGN KEY (predicate_id) REFERENCES rsc (id) ON UPDATE CASCADE ON DELETE CASCADE,
            CONSTRAINT fk_edge_creator_id FOREIGN KEY (creator_id) REFERENCES rsc (id) ON UPDATE CASCADE ON DELETE SET NULL)",
        "CREATE TABLE medium (
            id int NOT NULL,
            filename character varying(400),
            rootname character varying(100),
            mime character varying(128) NOT NULL DEFAULT 'application/octet-stream',
            width int NOT NULL DEFAULT 0,
            height int NOT NULL DEFAULT 0,
            orientation int NOT NULL DEFAULT 1,
            frame_count int,
            digest character varying(80),
            size bigint NOT NULL DEFAULT 0,
            preview_filename character varying(400),
            preview_width int NOT NULL DEFAULT 0,
            preview_height int NOT NULL DEFAULT 0,
            is_deletable_file boolean NOT NULL DEFAULT false,
            is_deletable_preview boolean NOT NULL DEFAULT false,
            props bytea,
            created timestamp with time zone NOT NULL DEFAULT now(),
            CONSTRAINT medium_pkey PRIMARY KEY (id),
            CONSTRAINT medium_filename_key UNIQUE (filename),
            CONSTRAINT fk_medium_rsc_id FOREIGN KEY (id) REFERENCES rsc (id) ON UPDATE CASCADE ON DELETE CASCADE)",
        "CREATE TABLE identity (
            id serial NOT NULL,
            rsc_id int NOT NULL,
            type character varying(32) NOT NULL DEFAULT '',
            key character varying(200) NOT NULL DEFAULT '',
            is_unique boolean NOT NULL DEFAULT false,
            is_verified boolean NOT NULL DEFAULT false,
            verify_key character varying(32),
            propb bytea,
            prop1 character varying(200) NOT NULL DEFAULT '',
            prop2 character varying(200) NOT NULL DEFAULT '',
            prop3 character varying(200) NOT NULL DEFAULT '',
            created timestamp with time zone NOT NULL DEFAULT now(),
            modified timestamp with time zone NOT NULL DEFAULT now(),
            visited timestamp with time zone,
            expires timestamp with time zone,
            CONSTRAINT auth_pkey PRIMARY KEY (id),
            CONSTRAINT pk_auth_rsc_id FOREIGN KEY (rsc_id) REFERENCES rsc (id) ON UPDATE CASCADE ON DELETE CASCADE,
            CONSTRAINT identity_verify_key_unique UNIQUE (verify_key),
            CONSTRAINT identity_rsc_id_type_key_unique UNIQUE (rsc_id, type, key))",
        "CREATE TABLE rsc_gone (
            id bigint NOT NULL,
            new_id bigint,
            new_uri character varying(2048),
            version int NOT NULL,
            uri character varying(2048),
            name character varying(80),
            page_paths character varying(80)[],
            is_authoritative boolean NOT NULL DEFAULT true,
            creator_id bigint,
            modifier_id bigint,
            created timestamp with time zone NOT NULL DEFAULT now(),
            modified timestamp with time zone NOT NULL DEFAULT now(),
            is_personal_data boolean NOT NULL DEFAULT false,
            CONSTRAINT rsc_gone_pkey PRIMARY KEY (id))",
        "CREATE TABLE hierarchy (
            name character varying(80),
            id int NOT NULL,
            parent_id int,
            nr int NOT NULL DEFAULT 0,
            lvl int NOT NULL DEFAULT 0,
            lft int NOT NULL DEFAULT 0,
            rght int NOT NULL DEFAULT 0,
            CONSTRAINT hierarchy_pkey PRIMARY KEY (name, id),
            CONSTRAINT fk_hierarchy_id FOREIGN KEY (id) REFERENCES rsc(id) ON UPDATE CASCADE ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED)",
        "CREATE TABLE pivot_task_queue (
            id serial NOT NULL,
            module character varying(30) NOT NULL,
            function character varying(30) NOT NULL,
            key character varying(100) NOT NULL DEFAULT '',
            props bytea,
            due timestamp with time zone,
            created timestamp with time zone NOT NULL DEFAULT now(),
            CONSTRAINT pivot_task_queue_pkey PRIMARY KEY (id),
            CONSTRAINT pivot_task_queue_mfk UNIQUE (module, function, key))",
        "CREATE TABLE edge_log (
            id bigserial NOT NULL,
            op character varying(6),
            edge_id int NOT NULL,
            subject_id int NOT NULL,
            predicate_id int NOT NULL,
            predicate character varying(80),
            object_id int NOT NULL,
            seq integer NOT NULL,
            logged timestamp with time zone NOT NULL DEFAULT now(),
            created timestamp with time zone,
            CONSTRAINT edge_log_pkey PRIMARY KEY (id))",
        "CREATE OR REPLACE FUNCTION edge_update() RETURNS trigger AS $$
         DECLARE pred character varying(80);
         BEGIN
            IF (tg_op = 'DELETE') THEN
                SELECT INTO pred r.name FROM rsc r WHERE r.id = old.predicate_id;
                INSERT INTO edge_log (op, edge_id, subject_id, object_id, predicate_id, predicate, seq, created)
                VALUES (tg_op, old.id, old.subject_id, old.object_id, old.predicate_id, pred, old.seq, old.created);
            ELSE
                SELECT INTO pred r.name FROM rsc r WHERE r.id = new.predicate_id;
                INSERT INTO edge_log (op, edge_id, subject_id, object_id, predicate_id, predicate, seq)
                VALUES (tg_op, new.id, new.subject_id, new.object_id, new.predicate_id, pred, new.seq);
            END IF;
            RETURN NULL;
         END;
         $$ LANGUAGE plpgsql",
        "CREATE TRIGGER edge_update_trigger AFTER INSERT OR UPDATE OR DELETE
         ON edge FOR EACH ROW EXECUTE PROCEDURE edge_update()"
    ].

datamodel(Context) ->
    Cats = categories(),
    CatId = fun(Name) -> {Id, _, _} = lists:keyfind(Name, 2, Cats), Id end,
    % 'category' first: it is its own category.
    Ordered = lists:sort(fun({A, _, _}, {B, _, _}) -> A =:= 100 orelse (B =/= 100 andalso A =< B) end, Cats),
    lists:foreach(
        fun({Id, Name, _}) -> insert_rsc(Id, Name, 100, Context) end,
        Ordered),
    lists:foreach(
        fun({Id, Name}) -> insert_rsc(Id, Name, CatId(<<"predicate">>), Context) end,
        predicates()),
    _ = z_db:q("insert into rsc (id, name, category_id, is_published, creator_id, modifier_id, props)
                values (1, 'administrator', $1, true, 1, 1, $2)",
               [CatId(<<"person">>), ?DB_PROPS(#{ <<"title">> => <<"Site Administrator">> })], Context),
    _ = z_db:q("insert into identity (rsc_id, type, key, is_unique, is_verified)
                values (1, 'username_pw', 'admin', true, true)", Context),
    % Nested set numbering of the category tree (depth first, by id).
    Children = fun(Parent) -> [ C || {_, _, P} = C <- Cats, P =:= Parent ] end,
    {_, Rows} = number(Children(undefined), undefined, 1, Children, 1, []),
    lists:foreach(
        fun({Id, ParentId, Nr, Lvl, Lft, Rght}) ->
            _ = z_db:q("insert into hierarchy (name, id, parent_id, nr, lvl, lft, rght)
                        values ('$category', $1, $2, $3, $4, $5, $6)",
                       [Id, ParentId, Nr, Lvl, Lft, Rght], Context),
            _ = z_db:q("update rsc set pivot_category_nr = $2 where category_id = $1", [Id, Nr], Context)
        end,
        Rows),
    _ = z_db:q("select setval('rsc_id_seq', 1000)", Context),
    ok.

number([], _ParentId, _Lvl, _Children, Nr, Acc) ->
    {Nr, Acc};
number([{Id, Name, _} | Rest], ParentId, Lvl, Children, Nr, Acc) ->
    {Nr1, Acc1} = number(Children(Name), Id, Lvl + 1, Children, Nr + 1, Acc),
    Row = {Id, ParentId, Nr, Lvl, Nr, Nr1 - 1},
    number(Rest, ParentId, Lvl, Children, Nr1, [Row | Acc1]).

insert_rsc(Id, Name, CategoryId, Context) ->
    _ = z_db:q("insert into rsc (id, name, category_id, is_published, props) values ($1, $2, $3, true, $4)",
               [Id, Name, CategoryId, ?DB_PROPS(#{ <<"title">> => Name })], Context),
    ok.
