{% extends "admin_edit_widget_std.tpl" %}

{# The backup & restore widget on the edit page, only when the admin panel setting is on. #}

{% block widget_wrapper %}
    {% if m.backup.admin_panel %}
        {% inherit %}
    {% endif %}
{% endblock %}

{% block widget_title %}
{_ Backup &amp; Restore _}
<div class="widget-header-tools">
    <a href="#" class="z-btn-help do_dialog" title="{_ Need more help? _}" data-dialog="{{
        %{
            title: _"Help about backup &amp; restore",
            text: _"Use <b>List and restore an earlier version</b> to see the saved versions of this page and go back to one of them.<br>You can also download the page as a file and later upload that file to replace the page. The file holds the saved page, not your unsaved changes, and no connections or media."
        }|escape
    }}"></a>
</div>
{% endblock %}

{% block widget_show_minimized %}true{% endblock %}
{% block widget_id %}admin_backup_sidebar{% endblock %}

{% block widget_content %}
<div class="form-group">
    {% if id.is_editable %}
        <p><a href="{% url admin_backup_revision id=id %}">{_ List and restore an earlier version _}</a></p>
    {% endif %}
    <p>
        {% if m.modules.active.mod_export %}
            <a href="{% url export_rsc type="bert" id=id %}" class="btn btn-default">{_ Download backup file _}</a>
        {% endif %}
        {% button text=_"Restore backup"
                  class="btn btn-default"
                  action={dialog_open title=_"Restore backup" template="_dialog_backup_upload.tpl" id=id}
        %}
    </p>
    {% if not m.modules.active.mod_export %}
        <p class="text-warning"><i class="fa fa-info-circle"></i> {_ Enable <tt>mod_export</tt> to download backup files. _}</p>
    {% endif %}
</div>
{% endblock %}
