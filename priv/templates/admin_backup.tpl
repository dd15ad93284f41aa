{% extends "admin_base.tpl" %}

{% block title %}{_ Admin Backups _}{% endblock %}

{% block content %}
{% with m.acl.is_admin as is_editable %}
    <div class="admin-header">
        <h2>{_ Backups _}</h2>
        <p>
            {_ Backups of the database, the configuration and the uploaded files of this site. _}
            {% if m.backup.directory as dir %}
                <br>{_ Stored in _} <code>{{ dir|escape }}</code>
            {% endif %}
        </p>
    </div>

    <div class="row">
        <div class="col-lg-8 col-md-6">
            {% block backup_now %}
                {% include "_admin_backup_widget_backup_now.tpl" %}
            {% endblock %}

            {% block backup_list %}
                <div class="widget">
                    <div class="widget-content">
                        {% live template="_admin_backup_list.tpl"
                                topic="bridge/origin/model/backup/event/#"
                                is_filestore_enabled=is_filestore_enabled
                        %}
                    </div>
                </div>
            {% endblock %}
        </div>

        <div class="col-lg-4 col-md-6">
            {% block backup_config %}
                {% if is_editable %}
                    {% include "_admin_backup_widget_config_export_panel.tpl" %}
                    {% include "_admin_backup_widget_config_backup_config.tpl" %}
                {% endif %}
            {% endblock %}
        </div>
    </div>
{% endwith %}
{% endblock %}
