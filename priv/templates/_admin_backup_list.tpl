{# The backup sets, newest first. Rendered live: every status published on
   model/backup/event/backup re-renders this list, with the payload in q
   (q.status, and for "progress" also q.phase and q.percent). #}
{% if m.acl.use.mod_backup or m.acl.use.mod_admin_config %}
<table class="table table-striped do_adminLinkedTable">
    <thead>
        <tr>
            <th width="100%">{_ Date _}</th>
        </tr>
    </thead>
    <tbody>
    {% for backup in m.backup.list_backups %}
        <tr>
            <td>
                {% if backup.is_running %}
                    <div>
                        <span class="label label-info">{_ Backup in progress _}</span>
                        {{ backup.timestamp|date:_"Y-m-d H:i" }}
                        <span class="text-muted">{{ backup.name|escape }}</span>
                    </div>
                    {% with q.status == "progress" as has_percent %}
                    <div class="progress" style="margin: 8px 0 0 0;">
                        <div class="progress-bar progress-bar-striped active" role="progressbar"
                             aria-valuemin="0" aria-valuemax="100"
                             {% if has_percent %}
                                aria-valuenow="{{ q.percent|escape }}" style="width: {{ q.percent|escape }}%; min-width: 2em;"
                             {% else %}
                                style="width: 100%;"
                             {% endif %}>
                            {% if has_percent %}{{ q.percent|escape }}%{% endif %}
                        </div>
                    </div>
                    {% if has_percent %}
                        <p class="help-block">
                            {% if q.phase == "database" %}{_ Saving the database _}
                            {% elseif q.phase == "config_files" %}{_ Saving the configuration _}
                            {% elseif q.phase == "files" %}{_ Saving the uploaded files _}
                            {% elseif q.phase == "encrypt" %}{_ Encrypting the backup _}
                            {% endif %}
                        </p>
                    {% endif %}
                    {% endwith %}
                {% else %}
                    <div class="pull-right">
                        {% if backup.is_encrypted %}
                            <span class="label label-info">{_ Encrypted _}</span>
                        {% endif %}
                        {% if m.backup.allow_backup_download %}
                            {% with backup.is_encrypted|if:".enc":"" as enc %}
                                {% if backup.is_files_present %}
                                    <a href="{% url backup_download star=backup.name++".tar.gz"++enc %}"
                                       download class="btn btn-default btn-xs">{_ download files _}</a>
                                {% endif %}
                                {% if backup.is_database_present %}
                                    <a href="{% url backup_download star=backup.name++".sql.gz"++enc %}"
                                       download class="btn btn-default btn-xs">{_ download database _}</a>
                                {% endif %}
                            {% endwith %}
                        {% endif %}
                    </div>

                    {{ backup.timestamp|date:_"Y-m-d H:i – l" }}
                    {% if backup.name|match:"-w[0-9]$" %}
                        <span class="text-muted">– {_ weekly backup _}</span>
                    {% endif %}

                    {% if is_filestore_enabled %}
                        <br>
                        {% if backup.is_filestore_uploaded %}
                            <span class="label label-success">{_ Uploaded to filestore _}</span>
                        {% else %}
                            <span class="label label-warning">{_ Not uploaded to filestore _}</span>
                        {% endif %}
                    {% endif %}
                {% endif %}
            </td>
        </tr>
    {% empty %}
        <tr>
            <td>{_ No backups present. _}</td>
        </tr>
    {% endfor %}
    </tbody>
</table>
{% if q.status == "error" %}
    <p class="alert alert-danger">{_ The last backup failed. See the logs for the reason. _}</p>
{% elseif q.status == "upload_error" %}
    <p class="alert alert-warning">{_ The last upload of a backup to the filestore failed. _}</p>
{% endif %}
{% endif %}
