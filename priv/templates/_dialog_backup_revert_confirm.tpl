{# Confirm a revert of page rsc_id to revision rev_id, with the edges and dependent pages. #}
{% wire id="revertconfirm"
        type="submit"
        postback={revert rsc_id=rsc_id rev_id=rev_id}
        delegate=`controller_admin_backup_revision`
%}
<form class="form" id="revertconfirm" action="postback">
    <p>{_ Are you sure you want to revert to this version? _}</p>
    <p>
        {_ Connections to and from other pages can be recovered as well. _}
        {_ A dependent page that was deleted together with this page can also be recovered. _}
    </p>

    <div class="form-group">
        <div class="checkbox">
            <label><input type="checkbox" name="outgoing_edges" checked> {_ Recover outgoing connections to other pages _}</label>
        </div>
        <div class="checkbox">
            <label><input type="checkbox" name="incoming_edges" checked> {_ Recover incoming connections from other pages _}</label>
        </div>
        <div class="checkbox">
            <label><input type="checkbox" name="dependent" checked> {_ Restore deleted <em>dependent</em> pages this page referred to _}</label>
        </div>
    </div>

    <p class="help-block">
        <span class="glyphicon glyphicon-info-sign"></span>
        {_ Media files can only be recovered while they are still in the file storage; Zotonic keeps them for at least 5 weeks. _}
        {_ After the page has been restored you are taken to its edit page. _}
    </p>

    <div class="modal-footer">
        {% button class="btn btn-default" action={dialog_close} text=_"Cancel" type="button" %}
        <button class="btn btn-primary" type="submit">{_ Revert _}</button>
    </div>
</form>
