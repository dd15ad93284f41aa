{% extends "admin_base.tpl" %}

{# Revisions of one page: pick two versions (a: older, b: newer) to see what changed, or one
   to see it whole and revert to it. The diff is made and rendered on the server by
   controller_admin_backup_revision on the "rev-diff" notification into #page-diff; no
   JavaScript library is needed for it. #}

{% block title %}{_ Revisions for _} {{ id.title }}{% endblock %}

{% block head_extra %}
<style type="text/css" nonce="{{ m.req.csp_nonce }}">
    #revisions { list-style: none; padding-left: 0; }
    #revisions li { padding: 2px 0; }
    #revisions label { display: inline-block; width: 20px; margin: 0; text-align: center; }
    #page-diff ins { color: #2a7a2a; }
    #page-diff del { color: #b52b27; }
    #page-diff .diff-omitted { color: #999; }
</style>
{% endblock %}

{% block content %}
{% if id.exists and not id.is_editable %}
    <div class="alert alert-warning" role="alert">
        <span class="glyphicon glyphicon-exclamation-sign" aria-hidden="true"></span>
        {_ You are not allowed to edit this page. _}
    </div>
{% elseif not id.exists and not m.acl.use.mod_backup %}
    <div class="alert alert-warning" role="alert">
        <span class="glyphicon glyphicon-exclamation-sign" aria-hidden="true"></span>
        {_ You are not allowed to recover this page. _}
    </div>
{% else %}
{% with not id.exists as is_deleted %}
{% with m.backup_revision.list[id] as revs %}
    <div class="admin-header">
        <h2>
            <span class="text-muted">{_ Revisions for _}:</span>
            {{ m.backup_revision.title[id]|default:_"<em>Untitled</em>" }}
        </h2>
        {% if id.exists %}
            <p><a class="btn btn-default" href="{% url admin_edit_rsc id=id %}">{_ Back to the edit page _}</a></p>
        {% endif %}
        <p>
            {_ Compare the versions of this page and restore an earlier one. _}<br>
            {% trans "Revisions are kept for {n} months." n=m.backup_revision.retention_months %}<br>
            {% trans "Revisions of active users are kept for {n} days." n=m.backup_revision.user_retention_days %}<br>
            {% trans "Revisions of deleted users are kept for {n} days." n=m.backup_revision.deleted_user_retention_days %}
        </p>
    </div>

    <div class="row">
        <div class="col-lg-3 col-md-3">
            <ul id="revisions">
                {% if id.exists %}
                    <li class="active">
                        <label><input type="radio" name="a" value="latest" checked></label>
                        <label><input type="radio" name="b" value="latest" checked></label>
                        {{ id.modified|date:"Y-m-d H:i" }} {{ id.modifier_id.title }}
                    </li>
                {% endif %}
                {% for rev in revs %}
                    {% if forloop.first %}
                        <li><h4>{_ Previous _}</h4></li>
                    {% endif %}
                    <li>
                        <label><input type="radio" name="a" value="{{ rev.id }}" {% if forloop.first and is_deleted %}checked{% endif %}></label>
                        <label><input type="radio" name="b" value="{{ rev.id }}" {% if forloop.first and is_deleted %}checked{% else %}style="visibility: hidden"{% endif %}></label>
                        {{ rev.created|date:_"Y-m-d H:i" }}
                        {{ rev.user_id.title|default:rev.user_name }}
                    </li>
                {% empty %}
                    {% if is_deleted %}
                        <li class="text-muted">{_ No revisions of this page were kept. _}</li>
                    {% endif %}
                {% endfor %}
            </ul>
        </div>
        <div class="col-lg-9 col-md-9">
            <div id="page-diff"></div>
        </div>
    </div>

    {% javascript %}
    (function() {
        function showDiff() {
            var a = $('#revisions input[name="a"]:checked').val();
            var b = $('#revisions input[name="b"]:checked').val();
            var args = { id: {{ id }}, a: a, z_delegate: 'controller_admin_backup_revision' };
            if (b !== undefined && a != b) {
                args.b = b;
            }
            z_notify("rev-diff", args);
        }
        function syncVisibility() {
            // "a" can be chosen at or below "b", "b" at or above "a".
            var a = $('#revisions input[name="a"]:checked').val();
            var b = $('#revisions input[name="b"]:checked').val();
            var seen = false;
            $('#revisions input[name="a"]').each(function() {
                if ($(this).val() == b) { seen = true; }
                $(this).css({ visibility: seen ? "visible" : "hidden" });
            });
            var open = true;
            $('#revisions input[name="b"]').each(function() {
                $(this).css({ visibility: open ? "visible" : "hidden" });
                if ($(this).val() == a) { open = false; }
            });
        }
        $('#revisions input').change(function() { syncVisibility(); showDiff(); });
        showDiff();
    })();
    {% endjavascript %}
{% endwith %}
{% endwith %}
{% endif %}
{% endblock %}
