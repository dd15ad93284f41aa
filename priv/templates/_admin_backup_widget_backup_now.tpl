<div class="widget">
    <div class="widget-content">
        <p>
            {_ You can make a backup at any moment. _}
            {% if not is_filestore_enabled %}
                {_ A backup has three parts: the database, the configuration and the uploaded files. _}
            {% endif %}
            <br>
            {_ There is one backup per day of the week and one per week for the last five weeks; older ones are overwritten. _}
        </p>

        {% if backup_config.ok and is_editable and m.backup.allow_manual_backup %}
            <div class="form-group">
                {% button class="btn btn-primary" text=_"Start backup now"
                          action={backup_start is_full_backup} %}
                {% if not is_filestore_enabled %}
                    {% button class="btn btn-default" text=_"Start database-only backup now"
                              action={backup_start is_full_backup=false} %}
                {% endif %}
            </div>
        {% elseif not backup_config.ok %}
            <div class="alert alert-danger">
                <p><strong>{_ Warning _}:</strong> {_ Backups are not possible until the problem below is solved: _}</p>
                <ul>
                    {% if not backup_config.db_dump %}
                        <li>{_ The "pg_dump" command was not found in the path. Install the PostgreSQL client tools, or set the "pg_dump" key in zotonic.config to the path of <tt>pg_dump</tt>, and return to this page. _}</li>
                    {% endif %}
                    {% if not backup_config.archive %}
                        <li>{_ The archive engine of the backup module is not available. _}</li>
                    {% endif %}
                </ul>
            </div>
        {% endif %}

        {% if m.backup.encrypt_backups and not m.backup.has_encrypt_password %}
            <p class="help-block alert-danger">
                <i class="fa fa-info-circle"></i>
                {_ Encryption is switched on, but there is no encryption password. Set one in the configuration. _}
            </p>
        {% endif %}
        {% if is_filestore_enabled %}
            <p class="help-block">
                <i class="fa fa-info-circle"></i>
                {_ The cloud filestore is enabled. Uploaded files are not included in the backup: make sure the cloud filestore has backups of its own. _}
            </p>
        {% endif %}
    </div>
</div>
